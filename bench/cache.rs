//! The CI scenario: a build whose cache travels through a registry. Against one
//! `kiln registry serve` on 127.0.0.1, times
//! - a cold build on an empty store that pushes its cache (`--cache-to ...,mode=max`),
//! - a fully cached rebuild on that same store, and `kiln pull` of the image into an
//!   empty store: together, what a runner that kept its store would pay, plus the image,
//! - the same build on another empty store with `--cache-from`: what a fresh CI runner
//!   pays. The goal: at most 2 × (cached rebuild + pull).
//!
//! Each figure is the best of ROUNDS, every round on fresh stores and a fresh registry.
//! Usage: cache-bench [SCALE] [ROUNDS]   (1 = 2,000 source files of 8 KiB and a RUN that
//! makes 64 MiB). Needs root and Debian's busybox-static.

#[path = "kiln_registry.rs"]
mod kiln_registry;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kiln_registry::kiln_bin;

fn run(root: &Path, args: &[&str]) -> Duration {
    let start = Instant::now();
    let out = Command::new(kiln_bin())
        .env("KILN_ROOT", root)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args(args)
        .output()
        .expect("run kiln");
    assert!(
        out.status.success(),
        "kiln {args:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    start.elapsed()
}

/// A context like a CI job's: sources copied in, a dependency step that makes a large
/// layer, a build step over the sources, small steps after.
fn context(dir: &Path, base: &str, scale: f64) {
    let files = ((2000.0 * scale) as usize).max(10);
    let generated_mib = ((64.0 * scale) as usize).max(1);
    for i in 0..files {
        let path = dir.join(format!("src/{:02}/f{i}.txt", i / 100));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, format!("{i}\n").repeat(8192 / 6)).unwrap();
    }
    std::fs::write(dir.join("deps.lock"), "deps 1\n").unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM {base} AS deps\n\
             COPY deps.lock /deps.lock\n\
             RUN mkdir /deps && head -c {generated_mib}m /dev/urandom > /deps/blob\n\
             FROM {base}\n\
             COPY --from=deps /deps /deps\n\
             COPY src /src\n\
             RUN cat /src/*/* | wc -c > /build.txt\n\
             RUN echo done > /ready\n\
             CMD [\"cat\", \"/build.txt\"]\n"
        ),
    )
    .unwrap();
}

fn main() {
    let mut args = std::env::args().skip(1);
    let scale: f64 = args.next().map(|s| s.parse().unwrap()).unwrap_or(1.0);
    let rounds: usize = args.next().map(|s| s.parse().unwrap()).unwrap_or(3);
    let work = tempfile::tempdir_in("/tmp").unwrap();
    let w = work.path();
    let base_ctx = w.join("base");
    std::fs::create_dir_all(&base_ctx).unwrap();
    std::fs::copy("/bin/busybox", base_ctx.join("busybox")).expect("/bin/busybox (busybox-static)");
    std::fs::write(
        base_ctx.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n",
    )
    .unwrap();
    let mut best = [Duration::MAX; 4];
    for round in 0..rounds {
        let (registry, addr) = kiln_registry::start(&w.join(format!("registry-{round}")));
        let base = format!("{addr}/ci/busybox:1");
        let setup = w.join(format!("setup-{round}"));
        run(&setup, &["build", "-t", &base, base_ctx.to_str().unwrap()]);
        run(&setup, &["push", &base]);
        let ctx = w.join(format!("ctx-{round}"));
        context(&ctx, &base, scale);
        let app = format!("{addr}/ci/app:1");
        let cache = format!("type=registry,ref={addr}/ci/app:cache,mode=max");
        let build = |root: &Path, extra: &[&str]| {
            let mut a = vec!["build", "--progress", "plain", "-t", &app];
            a.extend_from_slice(extra);
            a.push(ctx.to_str().unwrap());
            run(root, &a)
        };
        let a = w.join(format!("a-{round}"));
        let cold = build(&a, &["--push", "--cache-to", &cache]);
        let cached = build(&a, &[]);
        let pull = run(&w.join(format!("pull-{round}")), &["pull", &app]);
        let remote = build(&w.join(format!("b-{round}")), &["--cache-from", &cache]);
        for (slot, t) in [cold, cached, pull, remote].into_iter().enumerate() {
            best[slot] = best[slot].min(t);
        }
        drop(registry);
        for dir in ["setup", "a", "pull", "b", "registry"] {
            let _ = std::fs::remove_dir_all(w.join(format!("{dir}-{round}")));
        }
    }
    let [cold, cached, pull, remote] = best.map(|d| d.as_secs_f64());
    println!("CI scenario, kiln registry on 127.0.0.1, scale {scale}; best of {rounds}");
    println!("{:<52} {:>8.2}s", "cold build, --push and --cache-to", cold);
    println!(
        "{:<52} {:>8.2}s",
        "fully cached rebuild (same store)", cached
    );
    println!(
        "{:<52} {:>8.2}s",
        "kiln pull of the image (empty store)", pull
    );
    println!(
        "{:<52} {:>8.2}s",
        "--cache-from build on an empty store", remote
    );
    println!(
        "{:<52} {:>8.2}x  (goal <= 2x)",
        "--cache-from / (cached rebuild + pull)",
        remote / (cached + pull)
    );
    println!("{:<52} {:>8.2}x", "cold / --cache-from", cold / remote);
}
