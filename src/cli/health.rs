//! HEALTHCHECK, as docker runs it: the supervisor runs the test inside the container
//! (with `exec`'s confinement) every interval, fails a probe that outlives its timeout,
//! and keeps the result in the container's `health.json` — `starting` until the first
//! verdict, `healthy` after a success, `unhealthy` after `retries` failures in a row
//! (failures in the start period do not count) — with the last five probes, which `ps`
//! and `inspect` show.

use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use kiln_runtime::containers::{Container, Healthcheck};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Probe {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

/// docker's `State.Health`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    pub status: String,
    pub failing_streak: u32,
    pub log: Vec<Probe>,
}

const FILE: &str = "health.json";

pub fn read(dir: &Path) -> Option<Health> {
    serde_json::from_slice(&std::fs::read(dir.join(FILE)).ok()?).ok()
}

fn write(dir: &Path, health: &Health) {
    if let Ok(tmp) = tempfile::NamedTempFile::new_in(dir) {
        if serde_json::to_writer(std::io::BufWriter::new(tmp.as_file()), health).is_ok() {
            let _ = tmp.persist(dir.join(FILE));
        }
    }
}

fn now() -> String {
    humantime::format_rfc3339_nanos(SystemTime::now()).to_string()
}

/// `--health-*` flags over the image's HEALTHCHECK (Test as docker keeps it:
/// `["CMD", …]`, `["CMD-SHELL", "…"]` or `["NONE"]`).
pub fn argv(check: &Healthcheck) -> Option<Vec<String>> {
    match check.test.split_first()? {
        (kind, rest) if kind == "CMD" => Some(rest.to_vec()),
        (kind, rest) if kind == "CMD-SHELL" => {
            Some(vec!["/bin/sh".into(), "-c".into(), rest.join(" ")])
        }
        _ => None,
    }
}

/// One probe: the test's exit code (-1 past the timeout) and its first 4 KiB of output.
fn probe(c: &Container, argv: &[String], timeout: Duration) -> (i32, String) {
    let spec = match super::exec::exec_spec(c, argv, &[], None, None) {
        Ok(s) => s,
        Err(e) => return (-1, e.to_string()),
    };
    let (reader, writer) = match std::io::pipe() {
        Ok(p) => p,
        Err(e) => return (-1, e.to_string()),
    };
    let writer2 = match writer.try_clone() {
        Ok(w) => w,
        Err(e) => return (-1, e.to_string()),
    };
    let process = match kiln_runtime::exec(
        &spec,
        c.state.pid,
        Stdio::null(),
        Stdio::from(writer),
        Stdio::from(writer2),
    ) {
        Ok(p) => p,
        Err(e) => return (-1, e.to_string()),
    };
    let pid = process.child.id();
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let done = done.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + timeout;
            while !done.load(Ordering::SeqCst) {
                if Instant::now() >= deadline {
                    // The supervisor of the probe: its PID 1 dies with it.
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid as i32),
                        nix::sys::signal::Signal::SIGTERM,
                    );
                    return true;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            false
        })
    };
    let mut output = Vec::new();
    let _ = reader.take(4096).read_to_end(&mut output);
    let status = process.wait();
    done.store(true, Ordering::SeqCst);
    let timed_out = watchdog.join().unwrap_or(false);
    let code = match status {
        _ if timed_out => -1,
        Ok(s) => s.code().unwrap_or(-1),
        Err(_) => -1,
    };
    let mut text = String::from_utf8_lossy(&output).into_owned();
    if timed_out {
        text = format!("Health check exceeded timeout ({timeout:?})");
    }
    (code, text)
}

/// Runs the container's health check until `stop` is set (its process ended).
pub fn monitor(c: Container, check: Healthcheck, stop: Arc<AtomicBool>) {
    let Some(argv) = argv(&check) else {
        return;
    };
    let started = Instant::now();
    let mut health = Health {
        status: "starting".into(),
        ..Health::default()
    };
    write(&c.dir, &health);
    let sleep = |d: Duration| {
        let until = Instant::now() + d;
        while Instant::now() < until {
            if stop.load(Ordering::SeqCst) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20).min(d));
        }
        !stop.load(Ordering::SeqCst)
    };
    while sleep(check.interval()) {
        let start = now();
        let (code, output) = probe(&c, &argv, check.timeout());
        if stop.load(Ordering::SeqCst) {
            return;
        }
        health.log.push(Probe {
            start,
            end: now(),
            exit_code: code,
            output,
        });
        if health.log.len() > 5 {
            health.log.remove(0);
        }
        if code == 0 {
            health.status = "healthy".into();
            health.failing_streak = 0;
        } else if started.elapsed() >= check.start_period() {
            health.failing_streak += 1;
            if health.failing_streak >= check.retries() {
                health.status = "unhealthy".into();
            }
        }
        write(&c.dir, &health);
    }
}
