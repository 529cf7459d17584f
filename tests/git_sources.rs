//! ADD of git repositories and ssh agents (root; git, OpenSSH's server and client): a
//! repository served on 127.0.0.1 by `git daemon`, by `git http-backend` (run as CGI by a
//! small HTTP server) and by `sshd`, added at a tag, a branch and a subdirectory, with
//! `--keep-git-dir` and a `--checksum` commit; `RUN --mount=type=ssh` reaching the agent
//! `--ssh` names; and neither key nor socket in a layer, the config or the history.

kiln_testkit::private_network!();

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use kiln_testkit::{build_busybox, context, git, require_root, run_tool, wait_for, Kiln};

/// A free port on 127.0.0.1.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server process, killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn listening(port: u16) {
    wait_for(&format!("a server on port {port}"), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
}

/// `DIR/repo.git`: README "one" at tag v1, README "two" and docs/a.txt on main.
/// Returns v1's commit.
fn repository(dir: &Path) -> String {
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("README"), "one\n").unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "-qm", "one"]);
    git(&work, &["tag", "v1"]);
    let v1 = git(&work, &["rev-parse", "HEAD"]);
    std::fs::write(work.join("README"), "two\n").unwrap();
    std::fs::create_dir_all(work.join("docs")).unwrap();
    std::fs::write(work.join("docs/a.txt"), "doc\n").unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "-qm", "two"]);
    git(dir, &["clone", "-q", "--bare", "work", "repo.git"]);
    v1
}

/// `git daemon` serving `base` on a free port.
fn git_daemon(base: &Path) -> (Server, u16) {
    let port = free_port();
    let child = Command::new("git")
        .args([
            "daemon",
            "--reuseaddr",
            "--export-all",
            "--listen=127.0.0.1",
        ])
        .arg(format!("--port={port}"))
        .arg(format!("--base-path={}", base.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("git daemon");
    listening(port);
    (Server(child), port)
}

/// An HTTP server running `git http-backend` as CGI for the repositories under `base`.
const CGI_SERVER: &str = r#"
import http.server, os, subprocess, sys
root, port = sys.argv[1], int(sys.argv[2])
class Git(http.server.BaseHTTPRequestHandler):
    def do_GET(self): self.cgi()
    def do_POST(self): self.cgi()
    def log_message(self, *a): pass
    def cgi(self):
        path, _, query = self.path.partition('?')
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length)
        env = dict(os.environ, GIT_PROJECT_ROOT=root, GIT_HTTP_EXPORT_ALL='1',
                   PATH_INFO=path, QUERY_STRING=query, REQUEST_METHOD=self.command,
                   CONTENT_TYPE=self.headers.get('Content-Type', ''),
                   CONTENT_LENGTH=str(length), REMOTE_ADDR='127.0.0.1',
                   GIT_PROTOCOL=self.headers.get('Git-Protocol', ''))
        out = subprocess.run(['git', 'http-backend'], input=body, env=env,
                             capture_output=True).stdout
        head, _, rest = out.partition(b'\r\n\r\n')
        status, headers = 200, []
        for line in head.decode().split('\r\n'):
            key, _, value = line.partition(': ')
            if key.lower() == 'status':
                status = int(value.split()[0])
            elif key:
                headers.append((key, value))
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header('Content-Length', str(len(rest)))
        self.end_headers()
        self.wfile.write(rest)
http.server.ThreadingHTTPServer(('127.0.0.1', port), Git).serve_forever()
"#;

fn http_backend(base: &Path) -> (Server, u16) {
    let port = free_port();
    let script = base.join("git-http.py");
    std::fs::write(&script, CGI_SERVER).unwrap();
    let child = Command::new("python3")
        .arg(&script)
        .arg(base)
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3");
    listening(port);
    (Server(child), port)
}

#[test]
fn repositories_are_added_over_git_and_http_at_a_ref_and_a_subdirectory() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    let repos = k.dir.path().join("repos");
    let v1 = repository(&repos);
    let (_daemon, gport) = git_daemon(&repos);
    let (_http, hport) = http_backend(&repos);
    // Git's "dumb" HTTP (files served as they are), which cannot fetch shallow.
    git(&repos.join("repo.git"), &["update-server-info"]);
    let dport = free_port();
    let _dumb = Server(
        Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &dport.to_string(),
            ])
            .current_dir(&repos)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    listening(dport);
    let dockerfile = format!(
        "FROM busybox:kiln
ADD git://127.0.0.1:{gport}/repo.git#v1 /tag
ADD http://127.0.0.1:{hport}/repo.git#main:docs /docs
ADD --keep-git-dir=true http://127.0.0.1:{hport}/repo.git /kept
ADD --checksum={v1} git://127.0.0.1:{gport}/repo.git#v1 /pinned
ADD git://127.0.0.1:{gport}/repo.git#{v1} /by-commit
ADD http://127.0.0.1:{dport}/repo.git#v1 /dumb
RUN cat /tag/README /docs/a.txt /kept/README /pinned/README && git_dir=$(test -d /kept/.git && echo yes) && echo \"kept .git: $git_dir\" && test ! -e /tag/.git
"
    );
    let ctx = context(&k.dir.path().join("ctx"), &[("Dockerfile", &dockerfile)]);
    let log = k.log(&[
        "build",
        "--progress",
        "plain",
        "-t",
        "git:1",
        ctx.to_str().unwrap(),
    ]);
    assert!(log.contains("kept .git: yes"), "{log}");
    let flat = kiln_testkit::flatten(&k, "git:1");
    for at_v1 in ["pinned", "by-commit", "dumb"] {
        assert_eq!(
            std::fs::read_to_string(flat.join(at_v1).join("README")).unwrap(),
            "one\n",
            "{at_v1}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(flat.join("tag/README")).unwrap(),
        "one\n"
    );
    assert_eq!(
        std::fs::read_to_string(flat.join("docs/a.txt")).unwrap(),
        "doc\n"
    );
    assert!(!flat.join("docs/README").exists(), "only the subdirectory");
    assert_eq!(
        std::fs::read_to_string(flat.join("kept/README")).unwrap(),
        "two\n"
    );
    assert!(flat.join("kept/.git").is_dir() && !flat.join("tag/.git").exists());
    // A checksum that is not the ref's commit: refused, naming both, nothing tagged.
    let wrong = context(
        &k.dir.path().join("wrong"),
        &[(
            "Dockerfile",
            &format!(
                "FROM busybox:kiln\nADD --checksum={v1} git://127.0.0.1:{gport}/repo.git#main /x\n"
            ),
        )],
    );
    let out = k.run(&["build", "-t", "wrong:1", wrong.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains(&format!("not the --checksum {v1}")),
        "{err}"
    );
    assert!(!k.ok(&["images"]).contains("wrong"));
}

/// A static program that asks the agent at `$SSH_AUTH_SOCK` how many keys it holds
/// (SSH_AGENTC_REQUEST_IDENTITIES) and prints `identities: N`.
const AGENT_PROBE: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
int main(void) {
    const char *path = getenv("SSH_AUTH_SOCK");
    if (!path) { puts("no SSH_AUTH_SOCK"); return 2; }
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    strncpy(a.sun_path, path, sizeof a.sun_path - 1);
    if (connect(s, (struct sockaddr *)&a, sizeof a)) { perror("connect"); return 3; }
    unsigned char ask[5] = { 0, 0, 0, 1, 11 };
    if (write(s, ask, 5) != 5) return 4;
    unsigned char h[9]; size_t got = 0;
    while (got < 9) { ssize_t n = read(s, h + got, 9 - got); if (n <= 0) return 5; got += n; }
    if (h[4] != 12) { printf("answer %d\n", h[4]); return 6; }
    printf("identities: %u\n", (unsigned)(h[5] << 24 | h[6] << 16 | h[7] << 8 | h[8]));
    return 0;
}
"#;

/// `sshd` on a free port letting in `key`'s holder as root.
fn sshd(dir: &Path, public_key: &Path) -> (Server, u16) {
    let port = free_port();
    let host_key = dir.join("host_key");
    run_tool(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-f",
            host_key.to_str().unwrap(),
        ],
    );
    std::fs::copy(public_key, dir.join("authorized_keys")).unwrap();
    std::fs::create_dir_all("/run/sshd").unwrap();
    let config = dir.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nPidFile {}\n",
            host_key.display(),
            dir.join("authorized_keys").display(),
            dir.join("sshd.pid").display()
        ),
    )
    .unwrap();
    let child = Command::new("/usr/sbin/sshd")
        .args(["-D", "-e", "-f"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sshd (Debian's openssh-server)");
    listening(port);
    (Server(child), port)
}

#[test]
fn an_ssh_agent_reaches_run_steps_and_fetches_over_ssh_and_lands_nowhere() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    let dir = k.dir.path().join("ssh");
    std::fs::create_dir_all(&dir).unwrap();
    let key: PathBuf = dir.join("id_ed25519");
    run_tool(
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-f", key.to_str().unwrap()],
    );
    let repos = k.dir.path().join("repos");
    repository(&repos);
    let (_sshd, port) = sshd(&dir, &dir.join("id_ed25519.pub"));
    let ctx = context(
        &k.dir.path().join("ctx"),
        &[(
            "Dockerfile",
            &format!(
                "FROM busybox:kiln
ADD ssh://root@127.0.0.1:{port}{}/repo.git#main /src
COPY probe /probe
RUN --mount=type=ssh /probe && echo \"sock=$SSH_AUTH_SOCK\"
RUN test -z \"$SSH_AUTH_SOCK\" && test ! -e /run/buildkit/ssh_agent.0
",
                repos.display()
            ),
        )],
    );
    std::fs::write(dir.join("probe.c"), AGENT_PROBE).unwrap();
    run_tool(
        "gcc",
        &[
            "-static",
            "-O",
            "-o",
            ctx.join("probe").to_str().unwrap(),
            dir.join("probe.c").to_str().unwrap(),
        ],
    );
    // Without an agent: the ssh fetch says what to pass.
    let out = k.run(&["build", "-t", "ssh:1", ctx.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--ssh default"),
        "{err}"
    );
    // With the key served by the agent kiln starts: the repository comes over ssh, the
    // step asks the agent, which holds one key.
    let spec = format!("default={}", key.display());
    let log = k.log(&[
        "build",
        "--progress",
        "plain",
        "--ssh",
        &spec,
        "-t",
        "ssh:1",
        ctx.to_str().unwrap(),
    ]);
    assert!(log.contains("identities: 1"), "{log}");
    assert!(log.contains("sock=/run/buildkit/ssh_agent.0"), "{log}");
    let flat = kiln_testkit::flatten(&k, "ssh:1");
    assert_eq!(
        std::fs::read_to_string(flat.join("src/README")).unwrap(),
        "two\n"
    );
    // Nothing of the agent or the key in the layers, the config or the history.
    assert!(!flat.join("run/buildkit").exists());
    let secret = std::fs::read_to_string(&key).unwrap();
    let secret_line = secret.lines().nth(1).unwrap();
    let store = kiln_image::store::Store::open(k.root()).unwrap();
    let image = store.resolve("ssh:1").unwrap();
    let config = String::from_utf8_lossy(&image.config_bytes).into_owned();
    let env = format!(
        "{:?}",
        image.config.config().as_ref().and_then(|c| c.env().clone())
    );
    assert!(!env.contains("SSH_AUTH_SOCK"), "{env}");
    assert!(
        !config.contains("kiln-ssh-") && !config.contains(secret_line),
        "{config}"
    );
    for layer in image.manifest.layers() {
        let bytes = std::fs::read(store.blob_path(layer.digest())).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(secret_line) && !text.contains("kiln-ssh-"));
    }
    // A step that requires an agent the build was not given is refused.
    let required = context(
        &k.dir.path().join("required"),
        &[(
            "Dockerfile",
            "FROM busybox:kiln\nRUN --mount=type=ssh,id=deploy,required=true true\n",
        )],
    );
    let out = k.run(&["build", required.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("kiln build --ssh deploy"), "{err}");
}
