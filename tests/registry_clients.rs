//! Real clients against `kiln registry serve`: skopeo and podman push and pull, and the
//! digests survive byte for byte.

kiln_testkit::private_network!();

use kiln_testkit::{busybox_rootfs, require_root, require_tool, run_tool, Kiln};
use kiln_testkit::{digest, Registry};

/// A kiln store holding `app:1` (busybox plus 3 MB of data, so layers are not tiny).
fn image() -> Kiln {
    let k = Kiln::new();
    let tarball = busybox_rootfs(k.dir.path(), 3 << 20);
    k.ok(&["import", tarball.to_str().unwrap(), "app:1"]);
    k
}

#[test]
fn skopeo_copies_in_and_out_and_the_digests_survive() {
    require_tool!("skopeo");
    let k = image();
    let reg = Registry::start(&k.dir.path().join("registry"), &[]);
    let store = format!("oci:{}:app:1", k.root().display());
    let remote = format!("docker://{}/team/app:1", reg.addr);
    // Kept as they are: skopeo would otherwise compress kiln's uncompressed layers.
    let copy_in = [
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &store,
        &remote,
    ];
    run_tool("skopeo", &copy_in);

    let local_raw = run_tool("skopeo", &["inspect", "--raw", &store]);
    let remote_raw = run_tool(
        "skopeo",
        &["inspect", "--raw", "--tls-verify=false", &remote],
    );
    assert_eq!(
        local_raw, remote_raw,
        "the manifest is stored byte for byte"
    );
    let inspect: serde_json::Value = serde_json::from_str(&run_tool(
        "skopeo",
        &["inspect", "--tls-verify=false", &remote],
    ))
    .unwrap();
    assert_eq!(inspect["Digest"], digest(remote_raw.as_bytes()));
    assert_eq!(inspect["RepoTags"], serde_json::json!(["1"]));

    // And back out, into an OCI layout whose blobs match what kiln had.
    let out = k.dir.path().join("out");
    run_tool(
        "skopeo",
        &[
            "copy",
            "--preserve-digests",
            "--src-tls-verify=false",
            &remote,
            &format!("oci:{}:back", out.display()),
        ],
    );
    let manifest: serde_json::Value = serde_json::from_str(&local_raw).unwrap();
    for layer in manifest["layers"].as_array().unwrap() {
        let d = layer["digest"].as_str().unwrap();
        let hex = &d["sha256:".len()..];
        assert_eq!(
            std::fs::read(out.join("blobs/sha256").join(hex)).unwrap(),
            std::fs::read(k.root().join("blobs/sha256").join(hex)).unwrap(),
            "layer {d}"
        );
    }
    // A second copy finds every blob there and sends none again.
    let again = std::process::Command::new("skopeo")
        .arg("--debug")
        .args(copy_in)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{log}");
    assert!(
        log.contains("already present") && !log.contains("POST "),
        "no upload the second time: {log}"
    );
}

#[test]
fn podman_pulls_and_pushes() {
    require_tool!("podman");
    require_root!();
    let k = image();
    let reg = Registry::start(&k.dir.path().join("registry"), &[]);
    let store = format!("oci:{}:app:1", k.root().display());
    let remote = format!("{}/team/app:1", reg.addr);
    run_tool(
        "skopeo",
        &[
            "copy",
            "--dest-tls-verify=false",
            &store,
            &format!("docker://{remote}"),
        ],
    );

    let storage = k.dir.path().join("podman");
    let podman = |args: &[&str]| {
        let mut all = vec![
            "--root".to_string(),
            storage.join("root").display().to_string(),
            "--runroot".to_string(),
            storage.join("run").display().to_string(),
            "--storage-driver".to_string(),
            "vfs".to_string(),
        ];
        all.extend(args.iter().map(|s| s.to_string()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        run_tool("podman", &all)
    };
    podman(&["pull", "-q", "--tls-verify=false", &remote]);
    let pushed = format!("{}/other/copy:2", reg.addr);
    podman(&["tag", &remote, &pushed]);
    podman(&["push", "-q", "--tls-verify=false", &pushed]);

    let tags: serde_json::Value = reg
        .http
        .get(reg.url("/v2/other/copy/tags/list"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(tags["tags"], serde_json::json!(["2"]));
    // What podman pushed has the layers it pulled.
    let inspect = |image: &str| -> serde_json::Value {
        serde_json::from_str(&run_tool(
            "skopeo",
            &[
                "inspect",
                "--tls-verify=false",
                &format!("docker://{image}"),
            ],
        ))
        .unwrap()
    };
    assert_eq!(inspect(&pushed)["Layers"], inspect(&remote)["Layers"]);
}
