//! A local S3-compatible server (moto_server, from PyPI's `moto[server]`) on 127.0.0.1 with
//! a fresh bucket, stopped with the value.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kiln_registry::config::S3Config;

pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Moto {
    /// None (with a note) when moto_server is missing off CI; on CI a missing one fails.
    pub fn start() -> Option<Moto> {
        let found = Command::new("sh")
            .args(["-c", "command -v moto_server"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            assert!(
                std::env::var_os("CI").is_none(),
                "moto_server is missing: scripts/setup installs it"
            );
            eprintln!("skipped: moto_server is not installed (pip install 'moto[server]')");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let endpoint = format!("http://127.0.0.1:{port}");
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(Moto { child, endpoint });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("moto_server did not start on {endpoint}");
    }

    /// A new bucket, and the configuration that names it.
    pub fn bucket(&self, name: &str) -> S3Config {
        let r = reqwest::blocking::Client::new()
            .put(format!("{}/{name}", self.endpoint))
            .send()
            .expect("create the bucket");
        assert!(r.status().is_success(), "create bucket: {}", r.status());
        S3Config {
            bucket: name.into(),
            endpoint: Some(self.endpoint.clone()),
            region: Some("us-east-1".into()),
            prefix: Some("registry".into()),
            access_key_id: Some("test".into()),
            secret_access_key: Some("test".into()),
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
