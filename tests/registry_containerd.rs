//! containerd (Debian's, through `ctr`) pulls from and pushes to `kiln registry serve`
//! with Bearer tokens, as it does against any registry.

kiln_testkit::private_network!();

use std::path::Path;
use std::process::{Child, Command, Stdio};

use kiln_testkit::{busybox_rootfs, require_root, require_tool, run_tool, Kiln, Registry};

/// A private containerd (no CRI plugin), stopped with the value.
struct Containerd {
    child: Child,
    socket: String,
}

impl Containerd {
    fn start(dir: &Path) -> Containerd {
        std::fs::create_dir_all(dir).unwrap();
        let socket = dir.join("containerd.sock").display().to_string();
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{}\"\nstate = \"{}\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\naddress = \"{socket}\"\n",
                dir.join("root").display(),
                dir.join("state").display()
            ),
        )
        .unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("containerd");
        // Killed when dropped, also when it never answers.
        let containerd = Containerd { child, socket };
        kiln_testkit::wait_for("containerd to answer", || {
            Command::new("ctr")
                .args(["--address", &containerd.socket, "version"])
                .output()
                .is_ok_and(|o| o.status.success())
        });
        containerd
    }

    fn ctr(&self, args: &[&str]) -> String {
        let mut all = vec!["--address", &self.socket];
        all.extend_from_slice(args);
        run_tool("ctr", &all)
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn containerd_pulls_and_pushes_with_tokens() {
    require_tool!("containerd", "ctr", "skopeo");
    require_root!();
    let k = Kiln::new();
    let dir = k.dir.path();
    let htpasswd = dir.join("htpasswd");
    std::fs::write(
        &htpasswd,
        format!("alice:{}\n", bcrypt::hash("wonderland", 5).unwrap()),
    )
    .unwrap();
    std::fs::write(dir.join("secret"), "0123456789abcdef0123456789abcdef").unwrap();
    let config = dir.join("registry.toml");
    std::fs::write(
        &config,
        format!(
            "[auth]\nhtpasswd = \"{}\"\n[auth.token]\nsecret_file = \"{}\"\n",
            htpasswd.display(),
            dir.join("secret").display()
        ),
    )
    .unwrap();
    let reg = Registry::start(
        &dir.join("registry"),
        &["--config", config.to_str().unwrap()],
    );
    let tarball = busybox_rootfs(dir, 0);
    k.ok(&["import", tarball.to_str().unwrap(), "app:1"]);
    let image = format!("{}/team/app:1", reg.addr);
    run_tool(
        "skopeo",
        &[
            "copy",
            "--preserve-digests",
            "--dest-tls-verify=false",
            "--dest-creds",
            "alice:wonderland",
            &format!("oci:{}:app:1", k.root().display()),
            &format!("docker://{image}"),
        ],
    );

    let c = Containerd::start(&dir.join("containerd"));
    let denied = Command::new("ctr")
        .args([
            "--address",
            &c.socket,
            "images",
            "pull",
            "--plain-http",
            &image,
        ])
        .output()
        .unwrap();
    assert!(!denied.status.success(), "no credentials, no pull");
    c.ctr(&[
        "images",
        "pull",
        "--plain-http",
        "--user",
        "alice:wonderland",
        &image,
    ]);
    let listed = c.ctr(&["images", "ls", "-q"]);
    assert!(listed.contains(&image), "{listed}");
    let copy = format!("{}/team/copy:1", reg.addr);
    c.ctr(&["images", "tag", &image, &copy]);
    c.ctr(&[
        "images",
        "push",
        "--plain-http",
        "--user",
        "alice:wonderland",
        &copy,
    ]);
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
    let source = run_tool(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            "--creds",
            "alice:wonderland",
            &format!("docker://{image}"),
        ],
    );
    let digest =
        |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap()["Digest"].clone();
    assert_eq!(
        digest(&inspect),
        digest(&source),
        "containerd pushed the same manifest"
    );
}
