//! `kiln registry serve` on a free loopback port with storage of its own, stopped with
//! the value; and a small blocking HTTP client for the API.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A running `kiln registry serve`, killed when dropped.
pub struct Registry {
    /// Where it listens: `127.0.0.1:<port>`.
    pub addr: String,
    /// Its storage directory.
    pub root: PathBuf,
    child: Child,
    /// A client that does not follow redirects, so tests see them.
    pub http: reqwest::blocking::Client,
}

impl Registry {
    /// Serves `root` with the given extra arguments; waits until it listens.
    pub fn start(root: &Path, extra: &[&str]) -> Registry {
        Registry::start_at("127.0.0.1:0", root, extra)
    }

    /// [`Registry::start`], listening on `addr`.
    pub fn start_at(addr: &str, root: &Path, extra: &[&str]) -> Registry {
        Registry::spawn(addr, root, extra, Stdio::inherit())
    }

    /// [`Registry::start`], its log (standard error) written to `log`.
    pub fn start_logged(root: &Path, extra: &[&str], log: &Path) -> Registry {
        let file = std::fs::File::create(log).expect("the log file");
        Registry::spawn("127.0.0.1:0", root, extra, Stdio::from(file))
    }

    fn spawn(addr: &str, root: &Path, extra: &[&str], stderr: Stdio) -> Registry {
        let mut child = Command::new(crate::kiln::binary())
            .args(["registry", "serve", "--addr", addr, "--root"])
            .arg(root)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start kiln registry serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the listening line");
        let addr = line
            .split("://")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        Registry {
            addr,
            root: root.to_path_buf(),
            child,
            http: reqwest::blocking::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
        }
    }

    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Uploads `data` to repository `name` in one request (`POST ?digest=`); its digest.
    pub fn push_blob(&self, name: &str, data: &[u8]) -> String {
        let d = digest(data);
        let r = self
            .http
            .post(self.url(&format!("/v2/{name}/blobs/uploads/?digest={d}")))
            .body(data.to_vec())
            .send()
            .expect("POST the blob");
        assert_eq!(r.status(), 201, "{:?}", r.text());
        d
    }

    /// `PUT /v2/<name>/manifests/<reference>` of `body` as `media_type`.
    pub fn put_manifest(
        &self,
        name: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> reqwest::blocking::Response {
        self.http
            .put(self.url(&format!("/v2/{name}/manifests/{reference}")))
            .header("Content-Type", media_type)
            .body(body.to_vec())
            .send()
            .expect("PUT the manifest")
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the server has exited (of itself, or on a signal the test sent).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Stops it the hard way (SIGKILL), as a crash would.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `sha256:<hex>` of `data`.
pub fn digest(data: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

/// The status, and the spec's error code in an error body (empty when there is none).
pub fn code(response: reqwest::blocking::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().unwrap_or_default();
    (
        status,
        body["errors"][0]["code"].as_str().unwrap_or("").to_string(),
    )
}

/// A registry configuration with users alice/wonderland and bob/builder: alice may do
/// anything under team/, bob may pull and push team/* (one level), anyone
/// (logged in or not) may pull public/*.
pub fn auth_config(dir: &Path, tokens: bool) -> PathBuf {
    let htpasswd = dir.join("htpasswd");
    let entry = |user: &str, pw: &str| format!("{user}:{}\n", bcrypt::hash(pw, 5).unwrap());
    std::fs::write(
        &htpasswd,
        entry("alice", "wonderland") + &entry("bob", "builder"),
    )
    .unwrap();
    let secret = dir.join("secret");
    std::fs::write(&secret, "0123456789abcdef0123456789abcdef").unwrap();
    let token = if tokens {
        format!("[auth.token]\nsecret_file = \"{}\"\n", secret.display())
    } else {
        String::new()
    };
    let text = format!(
        r#"[auth]
htpasswd = "{}"

{token}
[[auth.access]]
users = ["alice"]
repositories = ["team/**"]
actions = ["*"]

[[auth.access]]
users = ["bob"]
repositories = ["team/*"]
actions = ["pull", "push"]

[[auth.access]]
users = ["anonymous", "*"]
repositories = ["public/*"]
actions = ["pull"]
"#,
        htpasswd.display()
    );
    let path = dir.join("registry.toml");
    std::fs::write(&path, text).unwrap();
    path
}
