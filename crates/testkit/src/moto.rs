//! A local S3-compatible server (moto_server, from PyPI's `moto[server]`) on 127.0.0.1 with
//! a fresh bucket, stopped with the value.

use std::process::{Child, Command, Stdio};

/// A running moto_server, killed when dropped.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
}

/// A bucket on a [`Moto`], and what a client needs to reach it (moto takes any keys).
pub struct Bucket {
    /// The bucket's name.
    pub name: String,
    /// The server's URL.
    pub endpoint: String,
    /// The region to sign for.
    pub region: &'static str,
    /// The key prefix the registry keeps its objects under.
    pub prefix: &'static str,
    /// The access key id.
    pub access_key_id: &'static str,
    /// The secret access key.
    pub secret_access_key: &'static str,
}

impl Bucket {
    /// The `[storage.s3]` section of a registry configuration naming this bucket.
    pub fn storage_toml(&self) -> String {
        format!(
            "[storage.s3]\nbucket = \"{}\"\nendpoint = \"{}\"\nregion = \"{}\"\nprefix = \"{}\"\naccess_key_id = \"{}\"\nsecret_access_key = \"{}\"\n",
            self.name, self.endpoint, self.region, self.prefix, self.access_key_id, self.secret_access_key
        )
    }
}

impl Moto {
    /// None when moto_server is missing off CI ([`crate::have`] says so); on CI a missing
    /// one fails.
    pub fn start() -> Option<Moto> {
        if !crate::have("moto_server") {
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        // Killed when dropped, also when it never listens.
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        crate::wait_for("moto_server to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Some(moto)
    }

    /// Makes a new bucket.
    pub fn bucket(&self, name: &str) -> Bucket {
        let r = reqwest::blocking::Client::new()
            .put(format!("{}/{name}", self.endpoint))
            .send()
            .expect("create the bucket");
        assert!(r.status().is_success(), "create bucket: {}", r.status());
        Bucket {
            name: name.into(),
            endpoint: self.endpoint.clone(),
            region: "us-east-1",
            prefix: "registry",
            access_key_id: "test",
            secret_access_key: "test",
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
