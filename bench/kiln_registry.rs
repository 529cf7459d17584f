//! The release `kiln` beside the benchmark binary, and `kiln registry serve` started from
//! it on a free loopback port: shared by registry-bench and transfer-bench.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub fn kiln_bin() -> PathBuf {
    let kiln = std::env::current_exe().unwrap().with_file_name("kiln");
    assert!(kiln.exists(), "build kiln first: cargo build --release");
    kiln
}

/// A server process, stopped when this is dropped.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The running registry serving `dir`, and the address it listens on.
pub fn start(dir: &Path) -> (Running, String) {
    let mut child = Command::new(kiln_bin())
        .args(["registry", "serve", "--addr", "127.0.0.1:0", "--root"])
        .arg(dir)
        .env("KILN_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("://")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    (Running(child), addr)
}
