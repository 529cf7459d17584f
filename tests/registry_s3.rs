//! Two `kiln registry serve` processes on one S3 bucket (a local moto_server): what one
//! takes, the other serves; garbage collection works on the bucket too.

kiln_testkit::private_network!();

use kiln_testkit::Registry;
use kiln_testkit::{busybox_rootfs, require_tool, run_tool, Kiln};

#[test]
fn two_registries_share_one_bucket() {
    let Some(moto) = kiln_testkit::Moto::start() else {
        return;
    };
    require_tool!("skopeo");
    let k = Kiln::new();
    let config = k.dir.path().join("registry.toml");
    std::fs::write(&config, moto.bucket("shared").storage_toml()).unwrap();
    let args = ["--config", config.to_str().unwrap()];
    let unused = k.dir.path().join("unused");
    let (a, b) = (
        Registry::start(&unused, &args),
        Registry::start(&unused, &args),
    );

    let tarball = busybox_rootfs(k.dir.path(), 2 << 20);
    k.ok(&["import", tarball.to_str().unwrap(), "app:1"]);
    let store = format!("oci:{}:app:1", k.root().display());
    run_tool(
        "skopeo",
        &[
            "copy",
            "--preserve-digests",
            "--dest-tls-verify=false",
            &store,
            &format!("docker://{}/team/app:1", a.addr),
        ],
    );
    let from_b = format!("docker://{}/team/app:1", b.addr);
    let raw = run_tool(
        "skopeo",
        &["inspect", "--raw", "--tls-verify=false", &from_b],
    );
    assert_eq!(
        raw,
        run_tool("skopeo", &["inspect", "--raw", &store]),
        "B serves what A took, byte for byte"
    );
    let out = k.dir.path().join("out");
    run_tool(
        "skopeo",
        &[
            "copy",
            "--preserve-digests",
            "--src-tls-verify=false",
            &from_b,
            &format!("oci:{}:x", out.display()),
        ],
    );
    let manifest: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    assert_eq!(
        std::fs::read(out.join("blobs/sha256").join(&layer[7..])).unwrap(),
        std::fs::read(k.root().join("blobs/sha256").join(&layer[7..])).unwrap()
    );
    // Nothing is garbage while the tag holds it; after the tag goes, all of it is.
    let gc = |extra: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"));
        cmd.args(["registry", "gc", "--config", config.to_str().unwrap()])
            .args(extra);
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(gc(&["--grace", "0s"]).contains("removed 0 manifests, 0 blobs"));
    let r = a
        .http
        .delete(a.url("/v2/team/app/manifests/1"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    let swept = gc(&["--grace", "0s"]);
    assert!(swept.contains("removed 1 manifests, 3 blobs"), "{swept}");
    let r = b
        .http
        .head(b.url(&format!("/v2/team/app/blobs/{layer}")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);
}
