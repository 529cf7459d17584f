//! `kiln push`, `kiln pull`, `kiln login` against `kiln registry serve` on 127.0.0.1:
//! an image pushed, the store wiped, pulled back with the same digest and the same
//! files; credentials with Basic and with Bearer tokens; skopeo and podman read what kiln
//! pushed; a registry that serves a wrong blob gets nothing stored.

kiln_testkit::private_network!();

use std::io::Read;
use std::path::Path;

use kiln_testkit::{
    auth_config, busybox_rootfs, have, require_root, require_tool, run_tool, Kiln, Registry,
};
use sha2::Digest as _;

/// A store whose commands use `docker_config` for credentials.
fn with_config(k: &Kiln, docker_config: &Path, args: &[&str]) -> std::process::Output {
    k.cmd(args)
        .env("DOCKER_CONFIG", docker_config)
        .output()
        .unwrap()
}

/// The digest `kiln push` printed: `TAG: digest: sha256:... size: N`.
fn pushed_digest(out: &str) -> String {
    out.lines()
        .find_map(|l| l.split("digest: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no digest in {out}"))
        .to_string()
}

/// Each layer of `name` in the store at `root`, decompressed, has the diffID its config
/// names: the same files as the image pushed.
fn layers_match_diff_ids(root: &Path, name: &str) {
    let store = kiln_image::store::Store::open(root).unwrap();
    let image = store.resolve(name).unwrap();
    let diff_ids = image.config.rootfs().diff_ids().clone();
    assert_eq!(image.manifest.layers().len(), diff_ids.len());
    for (layer, diff_id) in image.manifest.layers().iter().zip(&diff_ids) {
        let mut data = Vec::new();
        store
            .open_blob(layer.digest())
            .unwrap()
            .read_to_end(&mut data)
            .unwrap();
        let mut plain = Vec::new();
        let media = layer.media_type().to_string();
        if media.ends_with("gzip") {
            flate2::read::MultiGzDecoder::new(&data[..])
                .read_to_end(&mut plain)
                .unwrap();
        } else if media.ends_with("zstd") {
            plain = zstd::decode_all(&data[..]).unwrap();
        } else {
            plain = data;
        }
        let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&plain)));
        assert_eq!(&digest, diff_id, "{media} layer {}", layer.digest());
    }
}

#[test]
fn push_wipe_pull_gives_the_same_image_and_files() {
    let reg_dir = tempfile::tempdir().unwrap();
    let reg = Registry::start(&reg_dir.path().join("store"), &[]);
    let a = Kiln::new();
    // 40 MiB of incompressible data: more than one upload chunk.
    let tarball = busybox_rootfs(a.dir.path(), 40 << 20);
    let name = format!("{}/team/app:1", reg.addr);
    let id = a.ok(&["import", tarball.to_str().unwrap(), &name]);
    let out = a.ok(&["push", &name]);
    assert!(out.contains(": Pushed"), "{out}");
    let digest = pushed_digest(&out);
    // Again: the registry has every blob, and the layers are not compressed again.
    let again = a.ok(&["push", &name]);
    assert!(
        !again.contains(": Pushed") && again.contains("Layer already exists"),
        "{again}"
    );
    assert_eq!(pushed_digest(&again), digest);
    // Another repository of the same registry: every blob is mounted, none uploaded.
    let other = format!("{}/team/copy:1", reg.addr);
    a.ok(&["tag", &name, &other]);
    let mounted = a.ok(&["push", &other]);
    assert!(
        mounted.contains("Mounted from team/app") && !mounted.contains(": Pushed"),
        "{mounted}"
    );
    assert_eq!(pushed_digest(&mounted), digest);

    let b = Kiln::new();
    let pulled = b.ok(&["pull", &name]);
    assert!(pulled.contains(&format!("Digest: {digest}")), "{pulled}");
    assert!(
        pulled.contains("Status: Downloaded newer image"),
        "{pulled}"
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&b.ok(&["image", "inspect", &name])).unwrap();
    assert!(
        inspect
            .to_string()
            .contains(id.trim().trim_start_matches("sha256:")),
        "the same image ID (config): {inspect}"
    );
    layers_match_diff_ids(&b.root(), &name);
    let up_to_date = b.ok(&["pull", &name]);
    assert!(up_to_date.contains("Image is up to date"), "{up_to_date}");
    // By digest too.
    let by_digest = format!("{}/team/app@{digest}", reg.addr);
    let c = Kiln::new();
    c.ok(&["pull", &by_digest]);
    layers_match_diff_ids(&c.root(), &by_digest);

    // zstd on request; skopeo reads what kiln pushed.
    let zname = format!("{}/team/app:zstd", reg.addr);
    a.ok(&["tag", &name, &zname]);
    a.ok(&["push", "--compression", "zstd", &zname]);
    let d = Kiln::new();
    d.ok(&["pull", &zname]);
    layers_match_diff_ids(&d.root(), &zname);
    if have("skopeo") {
        let raw = run_tool(
            "skopeo",
            &[
                "inspect",
                "--tls-verify=false",
                "--raw",
                &format!("docker://{name}"),
            ],
        );
        let manifest_digest = format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(raw.as_bytes()))
        );
        assert_eq!(manifest_digest, digest);
    }
    if have("podman") && nix::unistd::geteuid().is_root() {
        let storage = tempfile::tempdir().unwrap();
        let root = storage.path().join("root");
        let runroot = storage.path().join("run");
        run_tool(
            "podman",
            &[
                "--root",
                root.to_str().unwrap(),
                "--runroot",
                runroot.to_str().unwrap(),
                "--storage-driver",
                "vfs",
                "pull",
                "--tls-verify=false",
                &name,
            ],
        );
    }
}

#[test]
fn login_basic_and_tokens_and_clear_errors_without_them() {
    for tokens in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = auth_config(dir.path(), tokens);
        let reg = Registry::start(
            &dir.path().join("store"),
            &["--config", cfg.to_str().unwrap()],
        );
        let docker = dir.path().join("docker");
        let k = Kiln::new();
        let tarball = busybox_rootfs(k.dir.path(), 0);
        let name = format!("{}/team/app:1", reg.addr);
        k.ok(&["import", tarball.to_str().unwrap(), &name]);

        let denied = with_config(&k, &docker, &["push", &name]);
        assert!(!denied.status.success());
        let err = String::from_utf8_lossy(&denied.stderr);
        assert!(
            err.contains(&format!("kiln login {}", reg.addr)),
            "tokens={tokens}: {err}"
        );

        let wrong = with_config(
            &k,
            &docker,
            &["login", "-u", "alice", "-p", "nope", &reg.addr],
        );
        assert!(!wrong.status.success(), "tokens={tokens}");
        assert!(
            !docker.join("config.json").exists(),
            "a refused login stores nothing"
        );

        let mut login = k.cmd(&["login", "-u", "alice", "--password-stdin", &reg.addr]);
        login
            .env("DOCKER_CONFIG", &docker)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
        let mut child = login.spawn().unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"wonderland\n").unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains("Login Succeeded"));
        // Docker's format: auths.HOST.auth = base64(user:password).
        let config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(docker.join("config.json")).unwrap()).unwrap();
        assert!(config["auths"][&reg.addr]["auth"].is_string(), "{config}");

        let pushed = with_config(&k, &docker, &["push", &name]);
        assert!(
            pushed.status.success(),
            "tokens={tokens}: {}",
            String::from_utf8_lossy(&pushed.stderr)
        );
        let other = Kiln::new();
        let pulled = with_config(&other, &docker, &["pull", &name]);
        assert!(
            pulled.status.success(),
            "{}",
            String::from_utf8_lossy(&pulled.stderr)
        );
        // A store that pulled from team/app mounts its blobs into another repository
        // (a token for both scopes, or Basic).
        let copy = format!("{}/team/mounted:1", reg.addr);
        other.ok(&["tag", &name, &copy]);
        let mounted = with_config(&other, &docker, &["push", &copy]);
        let said = String::from_utf8_lossy(&mounted.stdout);
        assert!(
            mounted.status.success() && said.contains("Mounted from team/app"),
            "tokens={tokens}: {said}{}",
            String::from_utf8_lossy(&mounted.stderr)
        );

        with_config(&k, &docker, &["logout", &reg.addr]);
        let after = with_config(&Kiln::new(), &docker, &["pull", &name]);
        assert!(!after.status.success());
        assert!(String::from_utf8_lossy(&after.stderr).contains("kiln login"));
        // Anonymous pulls where anonymous may pull (public/*): a token without credentials.
        let public = format!("{}/public/app:1", reg.addr);
        k.ok(&["tag", &name, &public]);
        let alice_push = with_config(&k, &docker, &["push", &public]);
        assert!(
            !alice_push.status.success(),
            "nobody may push to public/ anonymously"
        );
    }
}

#[test]
fn wrong_blobs_missing_tags_platforms_and_broken_registries_store_nothing() {
    let reg_dir = tempfile::tempdir().unwrap();
    let reg = Registry::start(&reg_dir.path().join("store"), &[]);
    let a = Kiln::new();
    let tarball = busybox_rootfs(a.dir.path(), 1 << 20);
    let name = format!("{}/team/app:1", reg.addr);
    a.ok(&["import", tarball.to_str().unwrap(), &name]);
    a.ok(&["push", &name]);

    let b = Kiln::new();
    let missing = b.run(&["pull", &format!("{}/team/app:2", reg.addr)]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not found"));

    // Corrupt the largest blob the registry holds (a layer), keeping its size.
    let blobs = reg_dir.path().join("store/blobs/sha256");
    let largest = std::fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut data = std::fs::read(&largest).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    std::fs::write(&largest, &data).unwrap();
    let bad_digest = format!("sha256:{}", largest.file_name().unwrap().to_string_lossy());

    let out = b.run(&["pull", &name]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("digest mismatch") && err.contains(&bad_digest),
        "{err}"
    );
    let store = kiln_image::store::Store::open(b.root()).unwrap();
    assert!(store.records().unwrap().is_empty(), "no tag");
    assert!(!store.has_blob(&kiln_image::digest::parse(&bad_digest).unwrap()));
    kiln_testkit::assert_blobs_intact(&b.root());

    // An index with another platform only: the error names what it has and the flag.
    let manifest = pushed_digest(&a.ok(&["push", &name]));
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest,
            "size": 0,
            "platform": {"os": "linux", "architecture": "riscv64"}
        }]
    });
    let put = reg
        .http
        .put(reg.url("/v2/team/app/manifests/multi"))
        .header("Content-Type", "application/vnd.oci.image.index.v1+json")
        .body(index.to_string())
        .send()
        .unwrap();
    assert!(put.status().is_success(), "{:?}", put.text());
    let multi = format!("{}/team/app:multi", reg.addr);
    let other = b.run(&["pull", "--platform", "linux/amd64", &multi]);
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(
        !other.status.success()
            && err.contains("no image for linux/amd64 (it has: linux/riscv64)")
            && err.contains("--platform"),
        "{err}"
    );

    // A registry that is down, and one that answers garbage: errors that name them.
    let down = b.run(&["pull", "127.0.0.1:1/team/app:1"]);
    let err = String::from_utf8_lossy(&down.stderr);
    assert!(
        !down.status.success() && err.contains("127.0.0.1:1"),
        "{err}"
    );
    let garbage = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let garbage_addr = garbage.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in garbage.incoming().flatten() {
            let mut conn = conn;
            let mut buf = [0u8; 4096];
            let _ = std::io::Read::read(&mut conn, &mut buf);
            let body = "{ this is not a manifest";
            let _ = std::io::Write::write_all(
                &mut conn,
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    let answer = b.run(&["pull", &format!("{garbage_addr}/team/app:1")]);
    let err = String::from_utf8_lossy(&answer.stderr);
    assert!(
        !answer.status.success()
            && err.contains(&garbage_addr.to_string())
            && err.contains("manifest"),
        "{err}"
    );
    let store = kiln_image::store::Store::open(b.root()).unwrap();
    assert!(store.records().unwrap().is_empty(), "still no tag");
}

/// For the build tests: a registry with a busybox base pushed to it as
/// `REG/base/busybox:1` from the store returned; None where `kiln build` cannot run.
fn registry_with_base() -> Option<(tempfile::TempDir, Registry, Kiln, String)> {
    if !kiln_testkit::root_or_skip() {
        return None;
    }
    let reg_dir = tempfile::tempdir().unwrap();
    let reg = Registry::start(&reg_dir.path().join("store"), &[]);
    let base = format!("{}/base/busybox:1", reg.addr);
    let setup = Kiln::new();
    let tarball = busybox_rootfs(setup.dir.path(), 0);
    setup.ok(&["import", tarball.to_str().unwrap(), &base]);
    setup.ok(&["push", &base]);
    Some((reg_dir, reg, setup, base))
}

#[test]
fn a_build_pulls_its_remote_base_and_pushes_its_tags() {
    let Some((_reg_dir, reg, a, base)) = registry_with_base() else {
        return;
    };

    // A store without the base: the build pulls it, builds, and pushes its tag.
    let b = Kiln::new();
    let ctx = b.dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {base}\nRUN echo hi > /hello\n"),
    )
    .unwrap();
    let app = format!("{}/team/built:1", reg.addr);
    let out = b.log(&[
        "build",
        "--progress",
        "plain",
        "--push",
        "-t",
        &app,
        ctx.to_str().unwrap(),
    ]);
    assert!(out.contains(&format!("pull {base}")), "{out}");
    assert!(
        out.contains(&format!("pushing {app}: digest: sha256:")),
        "{out}"
    );

    let c = Kiln::new();
    c.ok(&["pull", &app]);
    let flat = c.dir.path().join("flat");
    flatten(&c.root(), &app, &flat);
    assert_eq!(std::fs::read_to_string(flat.join("hello")).unwrap(), "hi\n");
    assert!(flat.join("bin/busybox").is_file());

    // A new base under the same tag: a build uses the store's copy, --pull fetches it.
    let newer = busybox_rootfs(&a.dir.path().join("v2"), 1024);
    a.ok(&["import", newer.to_str().unwrap(), &base]);
    a.ok(&["push", &base]);
    let again = b.log(&[
        "build",
        "--progress",
        "plain",
        "-t",
        &app,
        ctx.to_str().unwrap(),
    ]);
    assert!(
        !again.contains("pull ") && again.contains("CACHED"),
        "{again}"
    );
    let pulled = b.log(&[
        "build",
        "--progress",
        "plain",
        "--pull",
        "-t",
        &app,
        ctx.to_str().unwrap(),
    ]);
    assert!(pulled.contains(&format!("pull {base}")), "{pulled}");
    assert!(
        pulled.contains("cache miss"),
        "the new base reruns the RUN: {pulled}"
    );
}

/// Debian's `docker-registry` (CNCF distribution 2.8) on a free loopback port with
/// htpasswd Basic auth (alice / wonderland), stopped with the value.
struct Distribution {
    addr: String,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Distribution {
    fn start() -> Distribution {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let htpasswd = dir.path().join("htpasswd");
        std::fs::write(
            &htpasswd,
            format!("alice:{}\n", bcrypt::hash("wonderland", 5).unwrap()),
        )
        .unwrap();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\nauth:\n  htpasswd:\n    realm: kiln-test\n    path: {}\n",
                dir.path().join("data").display(),
                htpasswd.display()
            ),
        )
        .unwrap();
        let child = std::process::Command::new("docker-registry")
            .args(["serve", config.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start docker-registry");
        kiln_testkit::wait_for("docker-registry to listen", || {
            std::net::TcpStream::connect(&addr).is_ok()
        });
        Distribution {
            addr,
            child,
            _dir: dir,
        }
    }
}

impl Drop for Distribution {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_reference_registry_with_basic_auth_takes_and_gives_the_same_image() {
    require_tool!("docker-registry");
    let reg = Distribution::start();
    let docker = tempfile::tempdir().unwrap();
    let a = Kiln::new();
    // 40 MiB: chunked uploads, as distribution takes them.
    let tarball = busybox_rootfs(a.dir.path(), 40 << 20);
    let name = format!("{}/team/app:1", reg.addr);
    a.ok(&["import", tarball.to_str().unwrap(), &name]);
    let denied = with_config(&a, docker.path(), &["push", &name]);
    assert!(!denied.status.success());
    assert!(String::from_utf8_lossy(&denied.stderr).contains(&format!("kiln login {}", reg.addr)));
    let login = with_config(
        &a,
        docker.path(),
        &["login", "-u", "alice", "-p", "wonderland", &reg.addr],
    );
    assert!(
        login.status.success(),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );
    let pushed = with_config(&a, docker.path(), &["push", &name]);
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let digest = pushed_digest(&String::from_utf8_lossy(&pushed.stdout));
    let b = Kiln::new();
    let pulled = with_config(&b, docker.path(), &["pull", &name]);
    assert!(
        pulled.status.success(),
        "{}",
        String::from_utf8_lossy(&pulled.stderr)
    );
    assert!(String::from_utf8_lossy(&pulled.stdout).contains(&format!("Digest: {digest}")));
    layers_match_diff_ids(&b.root(), &name);

    // It keeps a build cache too: an artifact manifest distribution 2.8 takes and gives.
    require_root!();
    let ctx = a.dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {name}\nRUN echo cached > /cached\n"),
    )
    .unwrap();
    let cache = format!("type=registry,ref={}/team/app:cache", reg.addr);
    let build = |k: &Kiln, flag: &str| {
        let out = with_config(
            k,
            docker.path(),
            &[
                "build",
                "--progress",
                "plain",
                flag,
                &cache,
                ctx.to_str().unwrap(),
            ],
        );
        // Progress goes to standard error, as docker build's.
        let text = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{text}");
        text
    };
    build(&a, "--cache-to");
    let from_cache = build(&Kiln::new(), "--cache-from");
    assert!(
        from_cache.contains("CACHED") && !from_cache.contains("cache miss"),
        "{from_cache}"
    );
}

/// A loopback TCP proxy to `target` that, once, cuts the first connection that carries
/// more than `after` bytes in the chosen direction (`upload`: client to registry).
struct CuttingProxy {
    addr: String,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl CuttingProxy {
    fn start(target: &str, after: usize, upload: bool) -> CuttingProxy {
        use std::io::Write;
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let target = target.to_string();
        let flag = cut.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                let server = std::net::TcpStream::connect(&target).unwrap();
                for (from, to, watched) in [
                    (
                        client.try_clone().unwrap(),
                        server.try_clone().unwrap(),
                        upload,
                    ),
                    (server, client, !upload),
                ] {
                    let flag = flag.clone();
                    std::thread::spawn(move || {
                        let (mut from, mut to) = (from, to);
                        let mut buf = vec![0u8; 64 << 10];
                        let mut carried = 0usize;
                        loop {
                            let n = match std::io::Read::read(&mut from, &mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            carried += n;
                            if watched && carried > after && !flag.swap(true, Ordering::SeqCst) {
                                let _ = to.write_all(&buf[..n - (carried - after).min(n)]);
                                let _ = from.shutdown(std::net::Shutdown::Both);
                                let _ = to.shutdown(std::net::Shutdown::Both);
                                break;
                            }
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                }
            }
        });
        CuttingProxy { addr, cut }
    }

    fn cut(&self) -> bool {
        self.cut.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[test]
fn a_connection_cut_mid_push_or_mid_pull_is_resumed_to_the_right_digest() {
    let reg_dir = tempfile::tempdir().unwrap();
    let reg = Registry::start(&reg_dir.path().join("store"), &[]);
    let a = Kiln::new();
    let tarball = busybox_rootfs(a.dir.path(), 48 << 20);
    let image = "app:1";
    a.ok(&["import", tarball.to_str().unwrap(), image]);

    // Mid-push: 40 MiB into the upload (inside the second chunk).
    let up = CuttingProxy::start(&reg.addr, 40 << 20, true);
    let name = format!("{}/team/app:1", up.addr);
    a.ok(&["tag", image, &name]);
    let out = a.ok(&["push", &name]);
    assert!(up.cut(), "the proxy cut the upload");
    let digest = pushed_digest(&out);

    // Mid-pull: 8 MiB into the download.
    let down = CuttingProxy::start(&reg.addr, 8 << 20, false);
    let name = format!("{}/team/app:1", down.addr);
    let b = Kiln::new();
    let pulled = b.ok(&["pull", &name]);
    assert!(down.cut(), "the proxy cut the download");
    assert!(pulled.contains(&format!("Digest: {digest}")), "{pulled}");
    layers_match_diff_ids(&b.root(), &name);
    kiln_testkit::assert_blobs_intact(&b.root());
}

/// The image `name` in the store at `root`: its manifest digest and its ID.
fn digests(root: &Path, name: &str) -> (String, String) {
    let store = kiln_image::store::Store::open(root).unwrap();
    let image = store.resolve(name).unwrap();
    (image.manifest_digest.to_string(), image.id().to_string())
}

/// The files of `name` in the store at `root`, its layers applied in order to `dir`.
fn flatten(root: &Path, name: &str, dir: &Path) {
    let store = kiln_image::store::Store::open(root).unwrap();
    let image = store.resolve(name).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    for layer in image.manifest.layers() {
        kiln_image::layer::apply(store.open_blob(layer.digest()).unwrap(), dir).unwrap();
    }
}

#[test]
fn the_build_cache_travels_through_the_registry_to_an_empty_store() {
    let Some((_reg_dir, reg, _setup, base)) = registry_with_base() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let ctx = work.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    // Every RUN prints a marker (quoted apart in the Dockerfile, so the step's title does
    // not show it): a RUN that executes shows it in the build's output.
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM {base} AS tools\n\
             RUN echo ran\"\"-tool && echo tool > /tool.txt\n\
             FROM {base}\n\
             RUN echo ran\"\"-one && echo one > /one\n\
             COPY dep.txt /dep.txt\n\
             RUN echo ran\"\"-dep && cat /dep.txt > /dep.copy\n\
             COPY --from=tools /tool.txt /tool.txt\n\
             RUN echo ran\"\"-nothing\n\
             COPY app.txt /app.txt\n\
             RUN echo ran\"\"-app && cat /dep.copy /app.txt /tool.txt > /app.copy\n\
             ENV X=1\n"
        ),
    )
    .unwrap();
    std::fs::write(ctx.join("dep.txt"), "dep\n").unwrap();
    std::fs::write(ctx.join("app.txt"), "app v1\n").unwrap();
    let layer_steps = 8;
    let app = format!("{}/team/app:1", reg.addr);
    let cache = format!("{}/team/app:cache", reg.addr);
    let build = |k: &Kiln, dir: &Path, cache_args: &[&str]| {
        let mut args = vec!["build", "--progress", "plain", "-t", &app];
        args.extend_from_slice(cache_args);
        args.push(dir.to_str().unwrap());
        let out = k
            .cmd(&args)
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "kiln {args:?}:\n{text}");
        text
    };
    let cache_from = format!("type=registry,ref={cache}");
    let cache_to = format!("type=registry,ref={cache},mode=max");

    // Runner A: no cache in the registry yet (said, not fatal); builds and exports.
    let a = Kiln::new();
    let first = build(
        &a,
        &ctx,
        &[
            "--push",
            "--cache-from",
            &cache_from,
            "--cache-to",
            &cache_to,
        ],
    );
    assert!(first.contains("not used:"), "{first}");
    assert!(
        first.contains("ran-app") && !first.contains("CACHED"),
        "{first}"
    );
    assert!(first.contains("export cache to"), "{first}");
    let (_, built_id) = digests(&a.root(), &app);
    let push_line = first
        .lines()
        .find(|l| l.contains(&format!("pushing {app}: digest:")))
        .unwrap_or_else(|| panic!("no push in {first}"));
    let pushed = pushed_digest(push_line);
    drop(a);

    // Runner B: an empty store, the context at another path: every step from the cache.
    let b = Kiln::new();
    let moved = work.path().join("checkout-b");
    std::fs::rename(&ctx, &moved).unwrap();
    let second = build(&b, &moved, &["--cache-from", &cache_from]);
    assert_eq!(second.matches("CACHED").count(), layer_steps, "{second}");
    assert!(!second.contains("ran-"), "no RUN executes: {second}");
    assert!(!second.contains("cache miss"), "{second}");
    // The same image as runner A's: the same ID, and pushed, the same digest (runner B's
    // layers are the registry's compressed blobs, which A's push sent).
    assert_eq!(digests(&b.root(), &app).1, built_id);
    let again = b.ok(&["push", &app]);
    assert_eq!(pushed_digest(&again), pushed, "{again}");
    assert!(
        !again.contains(": Pushed"),
        "the registry has every blob: {again}"
    );
    // Those layers are B's own now: removing the image keeps them for the cache, and a
    // build without --cache-from hits.
    b.ok(&["rmi", &app]);
    let local = build(&b, &moved, &[]);
    assert_eq!(local.matches("CACHED").count(), layer_steps, "{local}");

    // Runner C: one file changed: only the steps that depend on it run, on top of the
    // layers the cache gave.
    std::fs::write(moved.join("app.txt"), "app v2\n").unwrap();
    let c = Kiln::new();
    let third = build(&c, &moved, &["--cache-from", &cache_from]);
    assert_eq!(third.matches("CACHED").count(), layer_steps - 2, "{third}");
    assert!(third.contains("ran-app"), "{third}");
    for earlier in ["ran-tool", "ran-one", "ran-dep", "ran-nothing"] {
        assert!(!third.contains(earlier), "{earlier} ran: {third}");
    }
    let files = c.dir.path().join("files");
    flatten(&c.root(), &app, &files);
    assert_eq!(
        std::fs::read_to_string(files.join("app.copy")).unwrap(),
        "dep\napp v2\ntool\n"
    );

    // mode=min holds only the image's own stages: the tools stage runs again.
    let min_cache = format!("{}/team/app:cache-min", reg.addr);
    build(
        &c,
        &moved,
        &[
            "--cache-to",
            &format!("type=registry,ref={min_cache},mode=min"),
        ],
    );
    let d = Kiln::new();
    let fourth = build(&d, &moved, &["--cache-from", &min_cache]);
    assert!(fourth.contains("ran-tool"), "{fourth}");
    assert!(
        !fourth.contains("ran-one") && !fourth.contains("ran-app"),
        "{fourth}"
    );

    // A cache ref that is not a cache is said and skipped; a bad option is refused.
    d.ok(&["push", &app]);
    let fifth = build(&d, &moved, &["--cache-from", &app]);
    assert!(fifth.contains("is not a kiln build cache"), "{fifth}");
    let refused = d
        .cmd(&[
            "build",
            "--cache-to",
            "type=gha,scope=main",
            moved.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && err.contains("type=registry") && err.contains("type=local"),
        "{err}"
    );
}

/// This machine's first IPv4 address that is not loopback, if it has one.
fn outside_address() -> Option<String> {
    let out = std::process::Command::new("hostname")
        .arg("-I")
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find(|a| {
            a.parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| !ip.is_loopback())
        })
        .map(str::to_string)
}

#[test]
fn mirrors_and_insecure_registries_come_from_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let mirror = Registry::start(&dir.path().join("mirror"), &[]);
    let a = Kiln::new();
    let tarball = busybox_rootfs(a.dir.path(), 0);
    let mirrored = format!("{}/library/busybox:1", mirror.addr);
    a.ok(&["import", tarball.to_str().unwrap(), &mirrored]);
    a.ok(&["push", &mirrored]);
    let config = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let with = |k: &Kiln, cfg: &Path, args: &[&str]| {
        let out = k.cmd(args).env("KILN_CONFIG", cfg).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };

    // docker.io's image from its mirror (this machine has no way out: docker.io itself
    // would fail); a mirror that is down is passed over.
    let mirrors = config(
        "mirrors.toml",
        format!(
            "[registries.mirrors]\n\"docker.io\" = [\"127.0.0.1:1\", \"http://{}\"]\n",
            mirror.addr
        ),
    );
    let b = Kiln::new();
    let (ok, out) = with(&b, &mirrors, &["pull", "busybox:1"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("mirror 127.0.0.1:1:") && out.contains("from the mirror http://"),
        "{out}"
    );
    assert!(b.ok(&["image", "ls"]).contains("busybox"));
    // Nobody has it: the error says the registry's failure and the mirrors tried.
    let none = config(
        "none.toml",
        format!(
            "[registries.mirrors]\n\"registry.invalid\" = [\"{}\"]\n",
            mirror.addr
        ),
    );
    let (ok, out) = with(&b, &none, &["pull", "registry.invalid/nothing:1"]);
    assert!(!ok && out.contains("after the mirrors"), "{out}");
    // A config that does not read is named, with what is wrong.
    let bad = config("bad.toml", "[registries]\nmirror = []\n".into());
    let (ok, out) = with(&b, &bad, &["pull", "busybox:1"]);
    assert!(
        !ok && out.contains("bad.toml") && out.contains("unknown field `mirror`"),
        "{out}"
    );

    // A registry away from loopback takes plain HTTP only when the config lists it.
    let Some(ip) = outside_address() else {
        eprintln!("no address beside loopback: the insecure list is not tested");
        return;
    };
    let outside = Registry::start_at(&format!("{ip}:0"), &dir.path().join("outside"), &[]);
    let name = format!("{}/team/app:1", outside.addr);
    a.ok(&["tag", &mirrored, &name]);
    let plain = config("plain.toml", String::new());
    let (ok, out) = with(&a, &plain, &["push", &name]);
    assert!(
        !ok && out.contains("list it under `insecure`"),
        "HTTPS is the default away from loopback, and the error says what to do: {out}"
    );
    let insecure = config(
        "insecure.toml",
        format!("[registries]\ninsecure = [\"{}\"]\n", outside.addr),
    );
    let (ok, out) = with(&a, &insecure, &["push", &name]);
    assert!(ok, "{out}");
}

#[test]
fn a_terminal_gets_a_bar_per_layer_and_a_log_gets_lines() {
    let reg_dir = tempfile::tempdir().unwrap();
    let reg = Registry::start(&reg_dir.path().join("store"), &[]);
    let a = Kiln::new();
    // More than one upload chunk, so the bar moves before it ends.
    let tarball = busybox_rootfs(a.dir.path(), 40 << 20);
    let name = format!("{}/team/bars:1", reg.addr);
    a.ok(&["import", tarball.to_str().unwrap(), &name]);
    // `script` gives kiln a terminal (a pseudo-terminal) and keeps what it drew.
    let on_terminal = |k: &Kiln, args: &str| {
        let out = std::process::Command::new("script")
            .args([
                "-qec",
                &format!("{} {args}", env!("CARGO_BIN_EXE_kiln")),
                "/dev/null",
            ])
            .env("KILN_ROOT", k.root())
            .env("TERM", "xterm")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "kiln {args}: {text}");
        text
    };
    let pushed = on_terminal(&a, &format!("push {name}"));
    assert!(
        pushed.contains("Pushing") && pushed.contains("MiB/"),
        "{pushed}"
    );
    assert!(
        pushed.contains(": Pushed") && pushed.contains("digest: sha256:"),
        "{pushed}"
    );
    let b = Kiln::new();
    let pulled = on_terminal(&b, &format!("pull {name}"));
    assert!(
        pulled.contains("Downloading") && pulled.contains("MiB/"),
        "{pulled}"
    );
    assert!(
        pulled.contains("Pull complete") && pulled.contains("Digest: sha256:"),
        "{pulled}"
    );
    // Not a terminal: status lines only, no bars.
    let c = Kiln::new();
    let logged = c.ok(&["pull", &name]);
    assert!(
        logged.contains("Pull complete") && !logged.contains("Downloading"),
        "{logged}"
    );
}
