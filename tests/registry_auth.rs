//! Authentication against `kiln registry serve`: Basic with an htpasswd file, Bearer
//! tokens from its token endpoint, access rules, the failed-login limit, TLS; and real
//! clients (skopeo, podman) logging in as they do anywhere else.

kiln_testkit::private_network!();

use kiln_testkit::{auth_config, code, require_root, Registry};
use kiln_testkit::{busybox_rootfs, require_tool, run_tool, Kiln};

fn start(tokens: bool) -> (tempfile::TempDir, Registry) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = auth_config(dir.path(), tokens);
    let reg = Registry::start(
        &dir.path().join("store"),
        &["--config", cfg.to_str().unwrap()],
    );
    (dir, reg)
}

fn challenge(r: &reqwest::blocking::Response) -> String {
    r.headers()
        .get("WWW-Authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

#[test]
fn basic_auth_checks_passwords_and_rights_and_limits_failures() {
    let (_d, reg) = start(false);
    let r = reg.http.get(reg.url("/v2/")).send().unwrap();
    assert_eq!(challenge(&r), "Basic realm=\"kiln\"");
    assert_eq!(code(r), (401, "UNAUTHORIZED".into()));
    let get = |user: &str, pw: &str, path: &str| {
        reg.http
            .get(reg.url(path))
            .basic_auth(user, Some(pw))
            .send()
            .unwrap()
    };
    assert_eq!(get("alice", "wonderland", "/v2/").status(), 200);
    assert_eq!(
        code(get("alice", "wrong", "/v2/")),
        (401, "UNAUTHORIZED".into())
    );
    // Rights: bob pulls team/app but may not delete there, nor pull deeper.
    assert_eq!(
        code(get("bob", "builder", "/v2/team/app/tags/list")),
        (404, "NAME_UNKNOWN".into())
    );
    assert_eq!(
        code(get("bob", "builder", "/v2/team/a/b/tags/list")),
        (403, "DENIED".into())
    );
    let r = reg
        .http
        .delete(reg.url(&format!("/v2/team/app/manifests/sha256:{}", "a".repeat(64))))
        .basic_auth("bob", Some("builder"))
        .send()
        .unwrap();
    assert_eq!(code(r), (403, "DENIED".into()));
    // Anonymous pulls of public/*; anything else asks to log in.
    assert_eq!(
        code(
            reg.http
                .get(reg.url("/v2/public/x/tags/list"))
                .send()
                .unwrap()
        ),
        (404, "NAME_UNKNOWN".into())
    );
    assert_eq!(
        code(
            reg.http
                .post(reg.url("/v2/public/x/blobs/uploads/"))
                .send()
                .unwrap()
        ),
        (401, "UNAUTHORIZED".into())
    );

    // Failed logins: after 5 in a minute, even the right password gets 429.
    for _ in 0..4 {
        assert_eq!(get("bob", "guess", "/v2/").status(), 401);
    }
    let r = get("bob", "builder", "/v2/team/app/tags/list");
    assert_eq!(r.status(), 429);
    assert_eq!(code(r), (429, "TOOMANYREQUESTS".into()));
}

#[test]
fn bearer_tokens_carry_exactly_the_rights_granted() {
    let (_d, reg) = start(true);
    let r = reg.http.get(reg.url("/v2/")).send().unwrap();
    let realm = format!("http://{}/token", reg.addr);
    assert_eq!(
        challenge(&r),
        format!("Bearer realm=\"{realm}\",service=\"kiln-registry\"")
    );
    assert_eq!(r.status(), 401);
    let r = reg
        .http
        .get(reg.url("/v2/team/app/tags/list"))
        .send()
        .unwrap();
    assert_eq!(
        challenge(&r),
        format!(
            "Bearer realm=\"{realm}\",service=\"kiln-registry\",scope=\"repository:team/app:pull\""
        )
    );
    // Basic is not accepted in place of a token.
    let r = reg
        .http
        .get(reg.url("/v2/"))
        .basic_auth("alice", Some("wonderland"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);

    let token = |user: Option<(&str, &str)>, scope: &str| -> String {
        let mut req = reg
            .http
            .get(format!("{realm}?service=kiln-registry&scope={scope}"));
        if let Some((u, p)) = user {
            req = req.basic_auth(u, Some(p));
        }
        let r = req.send().unwrap();
        assert_eq!(r.status(), 200);
        r.json::<serde_json::Value>().unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let alice = token(
        Some(("alice", "wonderland")),
        "repository:team/app:pull,push",
    );
    let bearer = |t: &str, path: &str| reg.http.get(reg.url(path)).bearer_auth(t).send().unwrap();
    assert_eq!(bearer(&alice, "/v2/").status(), 200);
    assert_eq!(
        code(bearer(&alice, "/v2/team/app/tags/list")),
        (404, "NAME_UNKNOWN".into())
    );
    let r = reg
        .http
        .post(reg.url("/v2/team/app/blobs/uploads/"))
        .bearer_auth(&alice)
        .send()
        .unwrap();
    assert_eq!(r.status(), 202, "alice's token grants push");
    // A token is for the repository it names only.
    assert_eq!(bearer(&alice, "/v2/team/other/tags/list").status(), 401);

    // bob asks for push and delete on team/app: he gets push, not delete.
    let bob = token(
        Some(("bob", "builder")),
        "repository:team/app:pull,push,delete",
    );
    let r = reg
        .http
        .delete(reg.url(&format!("/v2/team/app/blobs/sha256:{}", "a".repeat(64))))
        .bearer_auth(&bob)
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(challenge(&r).contains("scope=\"repository:team/app:delete\""));
    // Anonymous tokens carry the anonymous rights.
    let anon = token(None, "repository:public/x:pull");
    assert_eq!(
        code(bearer(&anon, "/v2/public/x/tags/list")),
        (404, "NAME_UNKNOWN".into())
    );
    let anon = token(None, "repository:team/app:pull");
    assert_eq!(bearer(&anon, "/v2/team/app/tags/list").status(), 401);
    // Wrong passwords get no token; a tampered token is refused.
    let r = reg
        .http
        .get(format!("{realm}?scope=x"))
        .basic_auth("alice", Some("nope"))
        .send()
        .unwrap();
    assert_eq!(code(r), (401, "UNAUTHORIZED".into()));
    let mut tampered = alice.clone();
    tampered.pop();
    assert_eq!(bearer(&tampered, "/v2/").status(), 401);
    // containerd's OAuth2 password grant.
    let r = reg
        .http
        .post(&realm)
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "wonderland"),
            ("service", "kiln-registry"),
            ("scope", "repository:team/app:pull"),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let t = r.json::<serde_json::Value>().unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        code(bearer(&t, "/v2/team/app/tags/list")),
        (404, "NAME_UNKNOWN".into())
    );
}

fn image(k: &Kiln) -> String {
    let tarball = busybox_rootfs(k.dir.path(), 0);
    k.ok(&["import", tarball.to_str().unwrap(), "app:1"]);
    format!("oci:{}:app:1", k.root().display())
}

#[test]
fn skopeo_and_podman_log_in_with_basic_and_with_tokens() {
    require_tool!("skopeo", "podman");
    require_root!();
    for tokens in [false, true] {
        let (dir, reg) = start(tokens);
        let k = Kiln::new();
        let src = image(&k);
        let dest = format!("docker://{}/team/app:1", reg.addr);
        let denied = std::process::Command::new("skopeo")
            .args(["copy", "--dest-tls-verify=false", &src, &dest])
            .output()
            .unwrap();
        assert!(!denied.status.success(), "no credentials, no push");
        run_tool(
            "skopeo",
            &[
                "copy",
                "--dest-tls-verify=false",
                "--dest-creds",
                "alice:wonderland",
                &src,
                &dest,
            ],
        );
        let wrong = std::process::Command::new("skopeo")
            .args([
                "inspect",
                "--tls-verify=false",
                "--creds",
                "bob:wrong",
                &dest,
            ])
            .output()
            .unwrap();
        assert!(!wrong.status.success());

        let storage = dir.path().join("podman");
        let authfile = dir.path().join("auth.json");
        let podman = |args: &[&str]| {
            let mut all: Vec<String> = vec![
                "--root".into(),
                storage.join("root").display().to_string(),
                "--runroot".into(),
                storage.join("run").display().to_string(),
                "--storage-driver".into(),
                "vfs".into(),
            ];
            all.extend(args.iter().map(|s| s.to_string()));
            let all: Vec<&str> = all.iter().map(String::as_str).collect();
            run_tool("podman", &all)
        };
        let authfile_arg = format!("--authfile={}", authfile.display());
        podman(&[
            "login",
            &authfile_arg,
            "--tls-verify=false",
            "-u",
            "bob",
            "-p",
            "builder",
            &reg.addr,
        ]);
        let image = format!("{}/team/app:1", reg.addr);
        podman(&["pull", "-q", &authfile_arg, "--tls-verify=false", &image]);
        let copy = format!("{}/team/copy:1", reg.addr);
        podman(&["tag", &image, &copy]);
        podman(&["push", "-q", &authfile_arg, "--tls-verify=false", &copy]);
        let inspect = run_tool(
            "skopeo",
            &[
                "inspect",
                "--tls-verify=false",
                "--creds",
                "alice:wonderland",
                &format!("docker://{copy}"),
            ],
        );
        assert!(inspect.contains("\"Digest\""), "tokens={tokens}: {inspect}");
    }
}

#[test]
fn tls_serves_https_that_clients_trust_with_the_certificate() {
    require_tool!("openssl", "skopeo");
    let dir = tempfile::tempdir().unwrap();
    // A CA, and a certificate for 127.0.0.1 it signs (a self-signed CA certificate
    // cannot serve as the server's own).
    let p = |name: &str| dir.path().join(name).display().to_string();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(
        p("ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    // A self-signed CA: its key and certificate.
    let make_ca = |name: &str, key: &str, pem: &str| {
        run_tool(
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                &format!("/CN={name}"),
                "-keyout",
                &p(key),
                "-out",
                &p(pem),
            ],
        )
    };
    make_ca("kiln-test-ca", "ca.key", "ca.pem");
    run_tool(
        "openssl",
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            &p("key.pem"),
            "-out",
            &p("leaf.csr"),
        ],
    );
    run_tool(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            &p("leaf.csr"),
            "-CA",
            &p("ca.pem"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            &p("ext"),
            "-out",
            &p("cert.pem"),
        ],
    );
    let reg = Registry::start(
        &dir.path().join("store"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let pem = std::fs::read(dir.path().join("ca.pem")).unwrap();
    let client = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let r = client
        .get(format!("https://{}/v2/", reg.addr))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        reg.http.get(reg.url("/v2/")).send().is_err(),
        "no plain HTTP on a TLS port"
    );

    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(dir.path().join("ca.pem"), certs.join("ca.crt")).unwrap();
    let k = Kiln::new();
    let src = image(&k);
    let dest = format!("docker://{}/secure/app:1", reg.addr);
    run_tool(
        "skopeo",
        &[
            "copy",
            "--dest-cert-dir",
            certs.to_str().unwrap(),
            &src,
            &dest,
        ],
    );
    let raw = run_tool(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--cert-dir",
            certs.to_str().unwrap(),
            &dest,
        ],
    );
    assert!(raw.contains("schemaVersion"));

    // kiln pull: refused with the cause and what to do; then trusted through kiln's
    // config, and through Docker's certs.d layout.
    let reference = format!("{}/secure/app:1", reg.addr);
    let config = dir.path().join("kiln.toml");
    std::fs::write(&config, "").unwrap();
    let pull = |k: &Kiln| {
        k.cmd(&["pull", &reference])
            .env("KILN_CONFIG", &config)
            .env("SSL_CERT_FILE", "/nonexistent")
            .output()
            .unwrap()
    };
    // Loopback registries are plain HTTP unless a CA is configured for them.
    std::fs::write(
        &config,
        format!(
            "[registries.ca]\n\"{}\" = \"{}\"\n",
            reg.addr,
            p("other-ca.pem")
        ),
    )
    .unwrap();
    make_ca("other", "other.key", "other-ca.pem");
    let out = pull(&Kiln::new());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("certificate") && err.contains("certs.d"),
        "{err}"
    );
    // The system's roots as SSL_CERT_FILE names them count too.
    let out = Kiln::new()
        .cmd(&["pull", &reference])
        .env("KILN_CONFIG", &config)
        .env("SSL_CERT_FILE", p("ca.pem"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(
        &config,
        format!("[registries.ca]\n\"{}\" = \"{}\"\n", reg.addr, p("ca.pem")),
    )
    .unwrap();
    let out = pull(&Kiln::new());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&config, "").unwrap();
    let certs_d = std::path::Path::new("/etc/docker/certs.d").join(&reg.addr);
    // The machine's /etc/docker/certs.d: written only as root.
    require_root!();
    std::fs::create_dir_all(&certs_d).unwrap();
    std::fs::copy(p("ca.pem"), certs_d.join("ca.crt")).unwrap();
    let out = pull(&Kiln::new());
    let _ = std::fs::remove_dir_all(&certs_d);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Pushes a config blob into `repo` as `user` (a repository with a blob in it).
fn push_as(reg: &Registry, user: &str, password: &str, repo: &str) {
    let data = format!("{{\"repo\":\"{repo}\"}}");
    let r = reg
        .http
        .post(reg.url(&format!(
            "/v2/{repo}/blobs/uploads/?digest={}",
            kiln_testkit::digest(data.as_bytes())
        )))
        .basic_auth(user, Some(password))
        .body(data)
        .send()
        .unwrap();
    assert_eq!(r.status(), 201, "{repo}: {:?}", r.text());
}

fn catalog(r: reqwest::blocking::Response) -> Vec<String> {
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().unwrap();
    body["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_catalog_lists_only_what_the_caller_may_pull() {
    let (_d, reg) = start(false);
    push_as(&reg, "alice", "wonderland", "team/deep/secret");
    push_as(&reg, "alice", "wonderland", "team/app");
    let get = |user: &str, pw: &str| {
        reg.http
            .get(reg.url("/v2/_catalog"))
            .basic_auth(user, Some(pw))
            .send()
            .unwrap()
    };
    assert_eq!(
        catalog(get("alice", "wonderland")),
        ["team/app", "team/deep/secret"]
    );
    // bob may pull team/* only: the deeper repository is not even named to him.
    assert_eq!(catalog(get("bob", "builder")), ["team/app"]);

    // With tokens: the catalog token shows what its user may pull.
    let (_d, reg) = start(true);
    let token = |user: &str, pw: &str, scope: &str| -> String {
        let r = reg
            .http
            .get(reg.url(&format!("/token?service=kiln-registry&scope={scope}")))
            .basic_auth(user, Some(pw))
            .send()
            .unwrap();
        r.json::<serde_json::Value>().unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for repo in ["team/deep/secret", "team/app"] {
        let t = token(
            "alice",
            "wonderland",
            &format!("repository:{repo}:pull,push"),
        );
        let data = format!("{{\"repo\":\"{repo}\"}}");
        let r = reg
            .http
            .post(reg.url(&format!(
                "/v2/{repo}/blobs/uploads/?digest={}",
                kiln_testkit::digest(data.as_bytes())
            )))
            .bearer_auth(t)
            .body(data)
            .send()
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let t = token("bob", "builder", "registry:catalog:*");
    let r = reg
        .http
        .get(reg.url("/v2/_catalog"))
        .bearer_auth(t)
        .send()
        .unwrap();
    assert_eq!(catalog(r), ["team/app"]);
}

#[test]
fn an_unknown_user_costs_a_bcrypt_like_a_wrong_password() {
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = dir.path().join("htpasswd");
    // Cost 12: a quarter of a second, far above the noise of a request.
    std::fs::write(
        &htpasswd,
        format!("alice:{}\n", bcrypt::hash("wonderland", 12).unwrap()),
    )
    .unwrap();
    let cfg = dir.path().join("registry.toml");
    std::fs::write(
        &cfg,
        format!(
            "[limits]\nlogin_failures_per_minute = 1000\n[auth]\nhtpasswd = \"{}\"\n",
            htpasswd.display()
        ),
    )
    .unwrap();
    let reg = Registry::start(
        &dir.path().join("store"),
        &["--config", cfg.to_str().unwrap()],
    );
    let time = |user: &str| {
        (0..3)
            .map(|_| {
                let start = std::time::Instant::now();
                let r = reg
                    .http
                    .get(reg.url("/v2/"))
                    .basic_auth(user, Some("wrong"))
                    .send()
                    .unwrap();
                assert_eq!(r.status(), 401);
                start.elapsed()
            })
            .min()
            .unwrap()
    };
    let (known, unknown) = (time("alice"), time("mallory"));
    // Without the dummy hash an unknown name answered at once: a user list by timing.
    assert!(
        unknown * 2 > known,
        "unknown user {unknown:?} against wrong password {known:?}"
    );
}

#[test]
fn a_user_name_cannot_forge_a_log_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = auth_config(dir.path(), false);
    let log = dir.path().join("registry.log");
    let reg = Registry::start_logged(
        &dir.path().join("store"),
        &["--config", cfg.to_str().unwrap()],
        &log,
    );
    let r = reg
        .http
        .get(reg.url("/v2/"))
        .basic_auth("eve\nINFO forged: admin logged in", Some("x"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    drop(reg);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("failed login"), "{text}");
    assert!(
        !text.lines().any(|l| l.starts_with("INFO forged")),
        "a forged line: {text}"
    );
}

#[test]
fn the_token_realm_is_never_taken_from_the_host_header() {
    let (_d, reg) = start(true);
    let r = reg
        .http
        .get(reg.url("/v2/"))
        .header("Host", "evil.example")
        .send()
        .unwrap();
    let c = challenge(&r);
    assert!(
        c.starts_with(&format!("Bearer realm=\"http://{}/token\"", reg.addr)),
        "{c}"
    );
    // Listening on every address, the realm must be configured.
    let dir = tempfile::tempdir().unwrap();
    let cfg = auth_config(dir.path(), true);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["registry", "serve", "--addr", "0.0.0.0:0", "--root"])
        .arg(dir.path().join("store"))
        .args(["--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("set auth.token.realm"), "{err}");
}
