//! Push and pull benchmark: `kiln push` / `kiln pull` against `skopeo copy` to and from
//! the same `kiln registry serve` in the same run, for an image of 3 large layers and one
//! of 200 small layers. Both compress to gzip on push (skopeo with `--dest-compress`), and
//! both pull into a local store (kiln's; an OCI layout for skopeo). Each figure is the
//! best of ROUNDS, each round against an empty repository and an empty destination.
//!
//! Usage: transfer-bench [SCALE] [ROUNDS]   (SCALE 1 = 3 × 256 MiB and 200 × 256 KiB)
//! Needs skopeo (scripts/setup installs it).

#[path = "kiln_registry.rs"]
mod kiln_registry;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kiln_image::store::Store;
use kiln_registry::kiln_bin;
use oci_spec::image::{Descriptor, MediaType};

/// A tar layer holding one file of `len` bytes, half random (so gzip has work to do and
/// something to gain), stored uncompressed as `kiln build` stores layers.
fn layer(store: &Store, seed: u64, len: usize) -> (Descriptor, String) {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let data: Vec<u8> = (0..len)
        .map(|i| {
            if i % 2 == 0 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            } else {
                b'k'
            }
        })
        .collect();
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(len as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, format!("data-{seed}"), &data[..])
        .unwrap();
    let bytes = tar.into_inner().unwrap();
    let digest = store.write_blob_bytes(&bytes).unwrap();
    (
        Descriptor::new(MediaType::ImageLayer, bytes.len() as u64, digest.clone()),
        digest.to_string(),
    )
}

/// An image of `count` layers of `len` bytes in the store at `root`, tagged `name`.
fn image(root: &Path, name: &str, count: usize, len: usize) {
    let store = Store::open(root).unwrap();
    let layers: Vec<(Descriptor, String)> = (0..count)
        .map(|i| layer(&store, i as u64 + 1, len))
        .collect();
    let diff_ids: Vec<String> = layers.iter().map(|(_, d)| format!("\"{d}\"")).collect();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
        diff_ids.join(",")
    );
    let config_digest = store.write_blob_bytes(config.as_bytes()).unwrap();
    let config = Descriptor::new(MediaType::ImageConfig, config.len() as u64, config_digest);
    let manifest = store
        .write_manifest(config, layers.into_iter().map(|(d, _)| d).collect())
        .unwrap();
    store
        .tag(&kiln_image::Reference::parse(name).unwrap(), &manifest)
        .unwrap();
}

fn run(cmd: &mut Command) -> Duration {
    let start = Instant::now();
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    start.elapsed()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let scale: f64 = args.next().map(|s| s.parse().unwrap()).unwrap_or(1.0);
    let rounds: usize = args.next().map(|s| s.parse().unwrap()).unwrap_or(3);
    let work = tempfile::tempdir().unwrap();
    let big = ((256u64 << 20) as f64 * scale) as usize;
    let small = ((256u64 << 10) as f64 * scale) as usize;
    let cases = [("3 layers", 3usize, big), ("200 layers", 200, small)];
    println!(
        "kiln push/pull vs skopeo copy, kiln registry on 127.0.0.1; best of {rounds}\n{:<34} {:>10} {:>10} {:>8}",
        "", "kiln", "skopeo", "ratio"
    );
    let _ = std::io::stdout().flush();
    for (label, count, len) in cases {
        let mut best = [Duration::MAX; 4];
        for round in 0..rounds {
            let (_registry, addr) =
                kiln_registry::start(&work.path().join(format!("reg-{label}-{round}")));
            let src = work.path().join(format!("src-{label}-{round}"));
            let name = format!("{addr}/bench/k:{round}");
            image(&src, &name, count, len);
            // kiln push: the first push compresses (and remembers); skopeo compresses too.
            let t = run(Command::new(kiln_bin())
                .env("KILN_ROOT", &src)
                .args(["push", &name]));
            best[0] = best[0].min(t);
            let t = run(Command::new("skopeo").args([
                "copy",
                "-q",
                "--dest-tls-verify=false",
                "--dest-compress",
                "--dest-compress-format",
                "gzip",
                &format!("oci:{}:{name}", src.display()),
                &format!("docker://{addr}/bench/s:{round}"),
            ]));
            best[1] = best[1].min(t);
            let dest = work.path().join(format!("pull-{label}-{round}"));
            let t = run(Command::new(kiln_bin())
                .env("KILN_ROOT", &dest)
                .args(["pull", &name]));
            best[2] = best[2].min(t);
            let layout = work.path().join(format!("layout-{label}-{round}"));
            let t = run(Command::new("skopeo").args([
                "copy",
                "-q",
                "--src-tls-verify=false",
                &format!("docker://{name}"),
                &format!("oci:{}:x", layout.display()),
            ]));
            best[3] = best[3].min(t);
            let _ = std::fs::remove_dir_all(&src);
            let _ = std::fs::remove_dir_all(&dest);
            let _ = std::fs::remove_dir_all(&layout);
        }
        let mib = (count * len) as f64 / (1 << 20) as f64;
        for (what, k, s) in [("push", best[0], best[1]), ("pull", best[2], best[3])] {
            println!(
                "{:<34} {:>9.2}s {:>9.2}s {:>7.2}x",
                format!("{what} {label} ({mib:.0} MiB)"),
                k.as_secs_f64(),
                s.as_secs_f64(),
                s.as_secs_f64() / k.as_secs_f64()
            );
        }
    }
}
