//! Layer benchmark: kiln's layer writer and applier against `tar | gzip` and
//! `tar | zstd -T0` on the same tree, in the same run. Prints MB/s and ratios.
//! Usage: layer-bench [SIZE_MIB] [ROUNDS] [WORK_DIR]   (default: 1024 MiB, best of 2, in /tmp)
//! Each figure is the best of ROUNDS runs, kiln's and the peer's alternating, so a busy
//! machine slows both alike.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use kiln_image::layer::{apply, write_dir, Compression, LayerOptions};

/// A tree of `total` bytes: a third in many small files (4 to 64 KiB), the rest in a few
/// large ones; text-like content that compresses about 3:1, as binaries and sources do.
fn make_tree(root: &Path, total: u64) {
    let words: Vec<String> = (0..4096u32)
        .map(|i| {
            format!(
                "{:x}{} ",
                i.wrapping_mul(2_654_435_761),
                ["lib", "usr", "bin", "share"][i as usize % 4]
            )
        })
        .collect();
    let mut state = 0x2545f4914f6cdd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut fill = |size: usize| {
        let mut data = Vec::with_capacity(size + 64);
        while data.len() < size {
            if next() % 4 == 0 {
                data.extend_from_slice(&next().to_le_bytes());
            } else {
                data.extend_from_slice(words[(next() % 4096) as usize].as_bytes());
            }
        }
        data.truncate(size);
        data
    };
    let small_total = total / 3;
    let mut written = 0u64;
    let mut n = 0;
    while written < small_total {
        let size = 4096 + (n * 7919 % 61_440);
        let dir = root.join(format!("small/{:03}", n / 200));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("f{n}")), fill(size)).unwrap();
        written += size as u64;
        n += 1;
    }
    let large = 8;
    std::fs::create_dir_all(root.join("large")).unwrap();
    for i in 0..large {
        let size = ((total - written) / (large - i)) as usize;
        std::fs::write(root.join(format!("large/f{i}")), fill(size)).unwrap();
        written += size as u64;
    }
}

fn tree_bytes(root: &Path) -> u64 {
    walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.metadata().map_or(0, |m| m.len()))
        .sum()
}

fn shell(script: &str) -> f64 {
    let start = Instant::now();
    let status = Command::new("bash")
        .args(["-o", "pipefail", "-c", script])
        .status()
        .expect("bash");
    assert!(status.success(), "{script}");
    start.elapsed().as_secs_f64()
}

struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mib: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1024);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2);
    let work = args.next().map(std::path::PathBuf::from);
    let best =
        |f: &mut dyn FnMut() -> f64| (0..rounds.max(1)).map(|_| f()).fold(f64::MAX, f64::min);
    let tmp = tempfile::tempdir_in(work.as_deref().unwrap_or(Path::new("/tmp"))).unwrap();
    let tree = tmp.path().join("tree");
    make_tree(&tree, mib << 20);
    let bytes = tree_bytes(&tree) as f64;
    let mbps = |secs: f64| bytes / 1e6 / secs;
    let files = walkdir::WalkDir::new(&tree).into_iter().count();
    println!(
        "tree: {:.0} MB in {files} entries, {} cores",
        bytes / 1e6,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    let mut results = Vec::new();
    for (name, compression, peer) in [
        (
            "gzip",
            Compression::Gzip,
            format!(
                "tar -C {} -cf - . | gzip -c > {}/peer.gz",
                tree.display(),
                tmp.path().display()
            ),
        ),
        (
            "zstd",
            Compression::Zstd,
            format!(
                "tar -C {} -cf - . | zstd -q -T0 -c > {}/peer.zst",
                tree.display(),
                tmp.path().display()
            ),
        ),
    ] {
        let peer_secs = best(&mut || shell(&peer));
        let mut info = None;
        let kiln_secs = best(&mut || {
            let out = std::fs::File::create(tmp.path().join(format!("kiln.{name}"))).unwrap();
            let start = Instant::now();
            let (written, mut out) = write_dir(
                &tree,
                LayerOptions {
                    compression,
                    source_date_epoch: None,
                },
                std::io::BufWriter::with_capacity(1 << 20, out),
            )
            .unwrap();
            out.flush().unwrap();
            info = Some(written);
            start.elapsed().as_secs_f64()
        });
        let info = info.expect("at least one round");
        let peer_size = std::fs::metadata(tmp.path().join(if name == "gzip" {
            "peer.gz"
        } else {
            "peer.zst"
        }))
        .unwrap()
        .len();
        println!(
            "create {name}: kiln {:.0} MB/s ({} MB), tar | {name} {:.0} MB/s ({} MB): kiln is {:.2}x",
            mbps(kiln_secs), info.size / 1_000_000, mbps(peer_secs), peer_size / 1_000_000, peer_secs / kiln_secs
        );
        results.push((name, kiln_secs, peer_secs));

        let dst = tmp.path().join(format!("apply-{name}"));
        let kiln_apply = best(&mut || {
            let _ = std::fs::remove_dir_all(&dst);
            std::fs::create_dir(&dst).unwrap();
            let start = Instant::now();
            apply(
                std::fs::File::open(tmp.path().join(format!("kiln.{name}"))).unwrap(),
                &dst,
            )
            .unwrap();
            start.elapsed().as_secs_f64()
        });
        let peer_dst = tmp.path().join(format!("peer-{name}"));
        let decompress = if name == "gzip" {
            "gzip -dc"
        } else {
            "zstd -q -dc"
        };
        let peer_apply = best(&mut || {
            let _ = std::fs::remove_dir_all(&peer_dst);
            std::fs::create_dir(&peer_dst).unwrap();
            shell(&format!(
                "{decompress} {}/kiln.{name} | tar -C {} -xf -",
                tmp.path().display(),
                peer_dst.display()
            ))
        });
        println!(
            "extract {name}: kiln {:.0} MB/s, {decompress} | tar -x {:.0} MB/s: kiln is {:.2}x",
            mbps(kiln_apply),
            mbps(peer_apply),
            peer_apply / kiln_apply
        );
        std::fs::remove_dir_all(&dst).unwrap();
        std::fs::remove_dir_all(&peer_dst).unwrap();
    }
    let start = Instant::now();
    let (_, counter) = write_dir(
        &tree,
        LayerOptions {
            compression: Compression::None,
            source_date_epoch: None,
        },
        Counter(0),
    )
    .unwrap();
    println!(
        "create uncompressed (the build path): kiln {:.0} MB/s ({} MB tar)",
        mbps(start.elapsed().as_secs_f64()),
        counter.0 / 1_000_000
    );
    for (name, kiln, peer) in results {
        let goal = if name == "gzip" { 1.5 } else { 1.0 };
        let verdict = if peer / kiln >= goal {
            "meets"
        } else {
            "misses"
        };
        println!(
            "goal {name}: at least {goal}x tar | {name}: {verdict} ({:.2}x)",
            peer / kiln
        );
    }
}
