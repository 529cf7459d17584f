//! Registry benchmark: `kiln registry serve` against the CNCF distribution registry
//! (Debian's `docker-registry`, 2.8) in the same run, on the same disk, without auth:
//! push and pull throughput (one stream and eight at once; layers move through curl, a
//! client that is not the bottleneck), small requests per second (`wrk` on a manifest GET
//! and a small blob GET; wrk cannot read HEAD answers), and memory (at rest, and the peak
//! while a large layer streams in). Prints each figure with the ratio.
//! Usage: registry-bench [SCALE]   (1 = 8 layers of 64 MiB and a 10 GiB upload)
//! Needs `apt-get install docker-registry wrk curl`. zot is not in Debian and cannot be fetched
//! here, so it is not measured.

#[path = "kiln_registry.rs"]
mod kiln_registry;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kiln_registry::Running;
use sha2::Digest as _;

struct Server {
    name: &'static str,
    process: Running,
    addr: String,
}

impl Server {
    fn kiln(dir: &Path) -> Server {
        let (process, addr) = kiln_registry::start(dir);
        Server {
            name: "kiln",
            process,
            addr,
        }
    }

    fn distribution(dir: &Path) -> Option<Server> {
        if Command::new("sh")
            .args(["-c", "command -v docker-registry"])
            .output()
            .ok()?
            .status
            .code()
            != Some(0)
        {
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.with_extension("yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.display()
            ),
        )
        .unwrap();
        let process = Running(
            Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let addr = format!("127.0.0.1:{port}");
        for _ in 0..100 {
            if std::net::TcpStream::connect(&addr).is_ok() {
                return Some(Server {
                    name: "distribution",
                    process,
                    addr,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("docker-registry did not start");
    }

    /// Peak and current resident memory, in MiB.
    fn memory(&self) -> (f64, f64) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.process.0.id())).unwrap();
        let kib = |key: &str| -> f64 {
            status
                .lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0.0)
        };
        (kib("VmHWM:") / 1024.0, kib("VmRSS:") / 1024.0)
    }

    /// Starts the peak (`VmHWM`) again from the current resident memory (proc(5),
    /// `clear_refs`: 5).
    fn reset_peak(&self) {
        std::fs::write(format!("/proc/{}/clear_refs", self.process.0.id()), "5").unwrap();
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// Deterministic incompressible bytes.
struct Noise {
    state: u64,
    left: u64,
}

impl Read for Noise {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        for chunk in buf[..n].chunks_mut(8) {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            let bytes = self.state.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn noise(seed: u64, len: u64) -> Noise {
    Noise {
        state: seed | 1,
        left: len,
    }
}

fn layer(dir: &Path, seed: u64, len: u64) -> (PathBuf, String) {
    let path = dir.join(format!("layer-{seed}"));
    let mut data = Vec::with_capacity(len as usize);
    noise(seed, len).read_to_end(&mut data).unwrap();
    std::fs::write(&path, &data).unwrap();
    (
        path,
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(&data))),
    )
}

/// A large file of noise, written in pieces, and its digest.
fn big_file(dir: &Path, len: u64) -> (PathBuf, String) {
    let path = dir.join("big");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut hasher = sha2::Sha256::new();
    let mut n = noise(99, len);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let k = n.read(&mut buf).unwrap();
        if k == 0 {
            break;
        }
        hasher.update(&buf[..k]);
        std::io::Write::write_all(&mut out, &buf[..k]).unwrap();
    }
    std::io::Write::flush(&mut out).unwrap();
    (path, format!("sha256:{}", hex::encode(hasher.finalize())))
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(None)
        .build()
        .unwrap()
}

/// Starts an upload session; the URL that closes it with `digest`.
fn start_upload(c: &reqwest::blocking::Client, s: &Server, repo: &str, digest: &str) -> String {
    let r = c
        .post(s.url(&format!("/v2/{repo}/blobs/uploads/")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 202, "{}: start upload", s.name);
    let location = r.headers()["Location"].to_str().unwrap().to_string();
    let url = if location.starts_with("http") {
        location
    } else {
        s.url(&location)
    };
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}digest={digest}")
}

/// Start a session, PUT the body to close it: the way docker pushes a layer.
fn push(
    c: &reqwest::blocking::Client,
    s: &Server,
    repo: &str,
    digest: &str,
    body: reqwest::blocking::Body,
) {
    let r = c
        .put(start_upload(c, s, repo, digest))
        .header("Content-Type", "application/octet-stream")
        .body(body)
        .send()
        .unwrap();
    assert_eq!(r.status(), 201, "{}: close upload", s.name);
}

/// Runs curl with `args`; it must succeed. Layers go through curl, not reqwest's blocking
/// client: that one moves a body between its threads in 8 KiB pieces and held both
/// servers to ~300 MiB/s, so the figures measured the client.
fn curl(args: &[&str], what: &str) {
    let out = Command::new("curl")
        .arg("-sf")
        .args(args)
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// [`push`] of a file, sent by curl.
fn push_file(c: &reqwest::blocking::Client, s: &Server, repo: &str, digest: &str, path: &Path) {
    let url = start_upload(c, s, repo, digest);
    curl(
        &[
            "-o",
            "/dev/null",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/octet-stream",
            "-T",
            path.to_str().unwrap(),
            &url,
        ],
        &format!("{}: close upload", s.name),
    );
}

fn wrk(url: &str, accept: Option<&str>) -> f64 {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t2", "-c32", "-d5s", "--latency"]);
    if let Some(a) = accept {
        cmd.args(["-H", &format!("Accept: {a}")]);
    }
    let out = cmd.arg(url).output().expect("wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("Non-2xx"), "wrk saw errors:\n{text}");
    text.lines()
        .find(|l| l.starts_with("Requests/sec:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0)
}

struct Figures {
    idle_mib: f64,
    push_one: f64,
    push_eight: f64,
    pull: f64,
    manifest_rps: f64,
    small_rps: f64,
    peak_mib: f64,
    big_peak_mib: f64,
    big_added_mib: f64,
    big_mbps: f64,
}

fn measure(
    s: &Server,
    layers: &[(PathBuf, String)],
    layer_len: u64,
    big: &(PathBuf, String),
) -> Figures {
    std::thread::sleep(Duration::from_millis(300));
    let idle_mib = s.memory().1;
    let c = client();
    let mib = |bytes: u64, t: Duration| bytes as f64 / (1 << 20) as f64 / t.as_secs_f64();

    let start = Instant::now();
    for (path, digest) in layers {
        push_file(&c, s, "bench/one", digest, path);
    }
    let push_one = mib(layer_len * layers.len() as u64, start.elapsed());

    let start = Instant::now();
    std::thread::scope(|scope| {
        for (path, digest) in layers {
            let c = c.clone();
            scope.spawn(move || push_file(&c, s, "bench/eight", digest, path));
        }
    });
    let push_eight = mib(layer_len * layers.len() as u64, start.elapsed());

    let config = b"{}";
    let config_digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(config)));
    push(&c, s, "bench/one", &config_digest, config.to_vec().into());
    let manifest = serde_json(&config_digest, layers, layer_len);
    let r = c
        .put(s.url("/v2/bench/one/manifests/v1"))
        .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest)
        .send()
        .unwrap();
    assert_eq!(r.status(), 201, "{}: manifest", s.name);

    // One curl for all layers, on one connection, as a client pulls an image; four
    // times over, so the figure is not a fraction of a second's.
    const PULLS: u64 = 4;
    let urls: Vec<String> = (0..PULLS)
        .flat_map(|_| layers)
        .map(|(_, digest)| s.url(&format!("/v2/bench/one/blobs/{digest}")))
        .collect();
    let mut args = Vec::new();
    for url in &urls {
        args.extend(["-o", "/dev/null", url.as_str()]);
    }
    let start = Instant::now();
    curl(&args, &format!("{}: pull", s.name));
    let pull = mib(PULLS * layer_len * layers.len() as u64, start.elapsed());

    let manifest_rps = wrk(
        &s.url("/v2/bench/one/manifests/v1"),
        Some("application/vnd.oci.image.manifest.v1+json"),
    );
    let small_rps = wrk(
        &s.url(&format!("/v2/bench/one/blobs/{config_digest}")),
        None,
    );

    // One large layer streamed in by curl: the peak memory over it alone tells whether
    // the server buffers it, so the peak is reset first (after it is read for the run so
    // far: eight pushes at once and wrk's 32 connections).
    let (peak_mib, before_big) = s.memory();
    s.reset_peak();
    let (big_file, big_digest) = big;
    let big_len = std::fs::metadata(big_file).unwrap().len();
    let start = Instant::now();
    push_file(&c, s, "bench/big", big_digest, big_file);
    let big_mbps = mib(big_len, start.elapsed());
    let big_peak_mib = s.memory().0;
    Figures {
        idle_mib,
        push_one,
        push_eight,
        pull,
        manifest_rps,
        small_rps,
        peak_mib,
        big_peak_mib,
        big_added_mib: big_peak_mib - before_big,
        big_mbps,
    }
}

fn serde_json(config: &str, layers: &[(PathBuf, String)], len: u64) -> String {
    let layers: Vec<String> = layers
        .iter()
        .map(|(_, d)| format!("{{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"{d}\",\"size\":{len}}}"))
        .collect();
    format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"{config}\",\"size\":2}},\"layers\":[{}]}}",
        layers.join(",")
    )
}

fn main() {
    let scale: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let layer_len = ((64u64 << 20) as f64 * scale).max(1024.0) as u64;
    let big = ((10u64 << 30) as f64 * scale).max((1u64 << 20) as f64) as u64;
    let work = tempfile::tempdir_in("/tmp").unwrap();
    let layers: Vec<(PathBuf, String)> =
        (1..=8).map(|i| layer(work.path(), i, layer_len)).collect();
    let big_len = big;
    let big = big_file(work.path(), big_len);

    let mut results = Vec::new();
    {
        let s = Server::kiln(&work.path().join("kiln"));
        results.push(("kiln", measure(&s, &layers, layer_len, &big)));
    }
    // Both stores on one disk would crowd it: each goes before the next starts.
    let _ = std::fs::remove_dir_all(work.path().join("kiln"));
    match Server::distribution(&work.path().join("distribution")) {
        Some(s) => results.push(("distribution", measure(&s, &layers, layer_len, &big))),
        None => println!("distribution: not measured (apt-get install docker-registry)"),
    }
    println!("zot: not measured (not in Debian, and no download is possible here)");
    println!(
        "8 layers of {} MiB; one upload of {:.1} GiB; wrk -t2 -c32 -d5s",
        layer_len >> 20,
        big_len as f64 / (1u64 << 30) as f64
    );
    println!(
        "{:<34} {:>12} {:>14} {:>8}",
        "figure", "kiln", "distribution", "ratio"
    );
    let k = &results[0].1;
    let d = results.get(1).map(|r| &r.1);
    type Pick = fn(&Figures) -> f64;
    let rows: [(&str, Pick, bool); 10] = [
        ("push, one stream (MiB/s)", |f| f.push_one, true),
        ("push, eight at once (MiB/s)", |f| f.push_eight, true),
        ("pull (MiB/s)", |f| f.pull, true),
        ("manifest GET (requests/s)", |f| f.manifest_rps, true),
        ("small blob GET (requests/s)", |f| f.small_rps, true),
        ("large upload (MiB/s)", |f| f.big_mbps, true),
        ("memory at rest (MiB)", |f| f.idle_mib, false),
        ("peak memory before it (MiB)", |f| f.peak_mib, false),
        ("peak memory, large upload (MiB)", |f| f.big_peak_mib, false),
        ("memory the upload added (MiB)", |f| f.big_added_mib, false),
    ];
    for (name, pick, higher_better) in rows {
        let kv = pick(k);
        match d {
            Some(d) => {
                let dv = pick(d);
                let ratio = if higher_better { kv / dv } else { dv / kv };
                println!("{name:<34} {kv:>12.1} {dv:>14.1} {ratio:>7.2}x");
            }
            None => println!("{name:<34} {kv:>12.1} {:>14} {:>8}", "-", "-"),
        }
    }
    println!("ratio: how many times better kiln does (higher throughput, lower memory)");
}
