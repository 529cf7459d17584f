//! Build benchmark: `kiln build` against `buildah bud` (Debian's buildah, overlay storage,
//! chroot isolation, `--layers` so it caches) and BuildKit (the one in Debian's docker.io,
//! through a private `dockerd` in a network namespace of its own) on the same contexts in
//! the same run, cold, fully cached, and after a one-file change. Prints times and ratios
//! (peer / kiln), and kiln's peak memory. Needs root, buildah and Debian's busybox-static;
//! BuildKit is measured when `/usr/sbin/dockerd` is there (`apt-get install docker.io`).
//! Usage: build-bench [SCALE] [SCENARIO...]   (1 = the full sizes: 20,000 files / 200 MB, a
//! 1 GiB file; scenarios whose names contain one of the SCENARIO words, all by default)

mod dockerd;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use dockerd::Dockerd;

struct Scenario {
    name: &'static str,
    dockerfile: String,
    /// Writes the context's files (a `marker` whose text is the scenario's name, so no
    /// scenario's step is ever a cache hit of another's).
    files: Box<dyn Fn(&Path)>,
    /// The file to change for the one-file-change run.
    change: &'static str,
}

fn write_random(path: &Path, size: usize, seed: u64) {
    let mut state = seed | 1;
    let mut data = Vec::with_capacity(size);
    while data.len() < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        data.extend_from_slice(&state.to_le_bytes());
    }
    data.truncate(size);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

fn write_marker(dir: &Path) {
    let name = dir.file_name().unwrap().to_string_lossy();
    std::fs::write(dir.join("marker"), name.as_bytes()).unwrap();
}

fn scenarios(scale: f64) -> Vec<Scenario> {
    let small_files = ((20_000.0 * scale) as usize).max(10);
    let big = ((1u64 << 30) as f64 * scale) as usize;
    let thirty_runs: String = (0..30)
        .map(|i| format!("RUN echo {i} > /layer{i}\n"))
        .collect();
    vec![
        Scenario {
            name: "small RUN steps",
            dockerfile: "FROM localhost/busybox:bench\nCOPY marker /marker\nRUN echo one > /one\nRUN echo two > /two\nRUN cat /one /two > /three\n".into(),
            files: Box::new(write_marker),
            change: "marker",
        },
        Scenario {
            name: "two parallel stages",
            dockerfile: "FROM localhost/busybox:bench AS a\nCOPY marker /m\nRUN sleep 1 && echo a > /a\nFROM localhost/busybox:bench AS b\nRUN sleep 1 && echo b > /b\nFROM localhost/busybox:bench\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n".into(),
            files: Box::new(write_marker),
            change: "marker",
        },
        Scenario {
            name: "20,000 small files",
            dockerfile: "FROM localhost/busybox:bench\nCOPY . /app\nRUN ls /app | wc -l\n".into(),
            files: Box::new(move |d| {
                for i in 0..small_files {
                    write_random(&d.join(format!("src/{:03}/f{i}", i / 500)), 10_240, i as u64);
                }
            }),
            change: "src/000/f0",
        },
        Scenario {
            name: "one 1 GiB file",
            dockerfile: "FROM localhost/busybox:bench\nCOPY big /big\nCOPY marker /marker\n".into(),
            files: Box::new(move |d| {
                write_random(&d.join("big"), big, 7);
                write_marker(d);
            }),
            change: "marker",
        },
        Scenario {
            name: "30 layers",
            dockerfile: format!("FROM localhost/busybox:bench\nCOPY marker /marker\n{thirty_runs}"),
            files: Box::new(write_marker),
            change: "marker",
        },
    ]
}

/// Runs `cmd` and returns its wall time. What was written before reaches the disk
/// first, so no builder's fsyncs wait behind the writeback of another's build.
fn timed(cmd: &mut Command) -> f64 {
    let synced = Command::new("sync").status().expect("sync");
    assert!(synced.success());
    let start = Instant::now();
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    start.elapsed().as_secs_f64()
}

/// `build-bench --rss CMD ARGS...`: runs CMD and prints its peak resident memory in KiB.
/// Measured in a process of its own, so no other child (buildah) counts.
fn rss_of_child(cmd: &[String]) -> ! {
    let status = Command::new(&cmd[0])
        .args(&cmd[1..])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run");
    let usage =
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    println!("{}", usage.max_rss());
    std::process::exit(if status.success() { 0 } else { 1 });
}

/// buildah's storage roots, emptied and unmounted when dropped: at the end, or when a
/// build fails (buildah's own flakes included), so no overlay mount outlives the run.
/// Nothing is removed before the end: with ext4 without a journal (as on the CI
/// machines) an inode made within a minute or so of many removals is slow to allocate,
/// so a scenario's removals would slow whichever builder runs next.
struct BuildahRoots(Vec<std::path::PathBuf>);

impl Drop for BuildahRoots {
    fn drop(&mut self) {
        for broot in &self.0 {
            let _ = Command::new("buildah")
                .args(["--storage-driver", "overlay", "--root"])
                .arg(broot.join("root"))
                .arg("--runroot")
                .arg(broot.join("run"))
                .args(["rmi", "-a", "-f"])
                .output();
            let _ = Command::new("umount")
                .arg("-R")
                .arg(broot.join("root/overlay"))
                .output();
        }
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("--rss") {
        rss_of_child(&argv[2..]);
    }
    let scale: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let only: Vec<String> = std::env::args().skip(2).collect();
    let kiln = std::env::current_exe().unwrap().with_file_name("kiln");
    assert!(
        kiln.exists(),
        "build kiln first: cargo build --release (looked for {})",
        kiln.display()
    );
    let work = tempfile::tempdir_in("/tmp").unwrap();
    let w = work.path();

    // The base both builders start from: busybox, built by kiln FROM scratch.
    let base_ctx = w.join("base");
    std::fs::create_dir_all(&base_ctx).unwrap();
    std::fs::copy("/bin/busybox", base_ctx.join("busybox")).expect("/bin/busybox (busybox-static)");
    std::fs::write(base_ctx.join("Dockerfile"), "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n").unwrap();
    let base_store = w.join("base-store");
    timed(
        Command::new(&kiln)
            .env("KILN_ROOT", &base_store)
            .args(["build", "-t", "localhost/busybox:bench"])
            .arg(&base_ctx),
    );
    let base_tar = w.join("base.tar");
    timed(
        Command::new(&kiln)
            .env("KILN_ROOT", &base_store)
            .args(["save", "-o"])
            .arg(&base_tar)
            .arg("localhost/busybox:bench"),
    );

    let warm_ctx = w.join("warm");
    std::fs::create_dir_all(&warm_ctx).unwrap();
    std::fs::write(
        warm_ctx.join("Dockerfile"),
        "FROM localhost/busybox:bench\nRUN true\n",
    )
    .unwrap();

    let dockerd = Dockerd::start(w);
    if dockerd.is_none() {
        println!("BuildKit: not measured (no /usr/sbin/dockerd: apt-get install docker.io)");
    }
    if let Some(d) = &dockerd {
        timed(&mut d.docker(&["load", "-q", "-i", base_tar.to_str().unwrap()]));
    }
    println!(
        "{:<22} {:<11} {:>8} {:>18} {:>18}",
        "scenario", "build", "kiln", "buildah (x)", "BuildKit (x)"
    );
    let mut peak_note = String::new();
    let mut buildah_roots = BuildahRoots(Vec::new());
    for s in scenarios(scale)
        .into_iter()
        .filter(|s| only.is_empty() || only.iter().any(|o| s.name.contains(o.as_str())))
    {
        let ctx = w.join(format!("ctx-{}", s.name.replace([' ', ','], "-")));
        std::fs::create_dir_all(&ctx).unwrap();
        (s.files)(&ctx);
        std::fs::write(ctx.join("Dockerfile"), &s.dockerfile).unwrap();

        let store = w.join(format!("kiln-{}", s.name.replace([' ', ','], "-")));
        timed(
            Command::new(&kiln)
                .env("KILN_ROOT", &store)
                .args(["load", "-q", "-i"])
                .arg(&base_tar),
        );
        // `docker load` and `buildah pull` unpack the base before the timed builds; kiln
        // unpacks a layer when a step first needs it. One step on the base first, so
        // every builder's cold build starts from an unpacked base.
        timed(
            Command::new(&kiln)
                .env("KILN_ROOT", &store)
                .args(["build", "--progress", "plain", "-t", "warm:1"])
                .arg(&warm_ctx),
        );
        let kiln_build = || {
            timed(
                Command::new(&kiln)
                    .env("KILN_ROOT", &store)
                    .args(["build", "--progress", "plain", "-t", "bench:1"])
                    .arg(&ctx),
            )
        };

        let broot = w.join(format!("buildah-{}", s.name.replace([' ', ','], "-")));
        buildah_roots.0.push(broot.clone());
        let buildah = |args: &[&str]| {
            let mut c = Command::new("buildah");
            c.args(["--storage-driver", "overlay", "--root"])
                .arg(broot.join("root"))
                .arg("--runroot")
                .arg(broot.join("run"))
                .args(args);
            c
        };
        timed(&mut buildah(&[
            "pull",
            "-q",
            &format!("docker-archive:{}", base_tar.display()),
        ]));
        let buildah_build = || {
            timed(&mut buildah(&[
                "bud",
                "--isolation",
                "chroot",
                "--layers",
                "-q",
                "-t",
                "bench:1",
                ctx.to_str().unwrap(),
            ]))
        };
        let buildkit_build = || {
            dockerd.as_ref().map(|d| {
                let mut cmd = d.docker(&[
                    "build",
                    "--network",
                    "host",
                    "-q",
                    "-t",
                    "bench:1",
                    ctx.to_str().unwrap(),
                ]);
                timed(cmd.env("DOCKER_BUILDKIT", "1"))
            })
        };

        let k_cold = if s.name.starts_with("one 1 GiB") {
            timed(&mut Command::new("sync"));
            let start = Instant::now();
            let out = Command::new(std::env::current_exe().unwrap())
                .arg("--rss")
                .arg(&kiln)
                .args(["build", "-t", "bench:1"])
                .arg(&ctx)
                .env("KILN_ROOT", &store)
                .output()
                .expect("run kiln");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let kib: u64 = String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .unwrap_or(0);
            peak_note = format!(
                "kiln peak memory, cold build of the 1 GiB file: {} MB",
                kib / 1024
            );
            start.elapsed().as_secs_f64()
        } else {
            kiln_build()
        };
        let b_cold = buildah_build();
        let bk_cold = buildkit_build();
        let k_cached = kiln_build();
        let b_cached = buildah_build();
        let bk_cached = buildkit_build();
        std::fs::write(ctx.join(s.change), format!("changed: {}", s.name)).unwrap();
        let k_change = kiln_build();
        let b_change = buildah_build();
        let bk_change = buildkit_build();
        let cell = |k: f64, peer: Option<f64>| match peer {
            Some(p) => format!("{p:.2}s ({:.1}x)", p / k),
            None => "-".into(),
        };
        for (phase, k, b, bk) in [
            ("cold", k_cold, b_cold, bk_cold),
            ("cached", k_cached, b_cached, bk_cached),
            ("one change", k_change, b_change, bk_change),
        ] {
            println!(
                "{:<22} {:<11} {:>7.2}s {:>18} {:>18}",
                s.name,
                phase,
                k,
                cell(k, Some(b)),
                cell(k, bk)
            );
        }
    }
    drop(buildah_roots);
    println!("{peak_note}");
    println!("goals: cached >= 5x, one-file change in the 20,000-file context >= 3x, cold >= 1x buildah; peak memory < 200 MB");
    drop(dockerd);
}
