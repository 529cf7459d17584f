//! `kiln registry gc`: untagged manifests and unreferenced blobs go, what tags reach
//! stays, and it is safe beside a serving registry (grace period, uploads in flight,
//! blobs claimed by a push).

use std::path::Path;
use std::time::{Duration, SystemTime};

use kiln_testkit::{digest, Registry};
use serde_json::json;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn manifest(config: &str, layers: &[&str], subject: Option<(&str, usize)>) -> Vec<u8> {
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
        "layers": layers.iter().map(|d| json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": 1})).collect::<Vec<_>>(),
    });
    if let Some((d, size)) = subject {
        m["subject"] = json!({"mediaType": OCI_MANIFEST, "digest": d, "size": size});
        m["artifactType"] = json!("application/example");
    }
    serde_json::to_vec(&m).unwrap()
}

fn put(reg: &Registry, name: &str, reference: &str, body: &[u8]) {
    let r = reg.put_manifest(name, reference, OCI_MANIFEST, body);
    assert_eq!(r.status(), 201, "{:?}", r.text());
}

fn gc(root: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["registry", "gc", "--root"])
        .arg(root)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn blob_file(root: &Path, d: &str) -> std::path::PathBuf {
    root.join("blobs/sha256").join(&d[7..])
}

/// Makes every file under `dir` look two hours old.
fn age(dir: &Path) {
    let then = SystemTime::now() - Duration::from_secs(7200);
    for e in walk(dir) {
        if e.is_file() {
            std::fs::File::options()
                .write(true)
                .open(&e)
                .unwrap()
                .set_modified(then)
                .unwrap();
        }
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn gc_removes_what_no_tag_reaches_and_keeps_the_rest_while_serving() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let reg = Registry::start(&root, &[]);
    let config = reg.push_blob("app", b"{}");
    let (a, b, c) = (
        reg.push_blob("app", b"A"),
        reg.push_blob("app", b"B"),
        reg.push_blob("app", b"C"),
    );
    let unused = reg.push_blob("app", b"never in a manifest");
    let m1 = manifest(&config, &[&a, &b], None);
    let m2 = manifest(&config, &[&b, &c], None);
    put(&reg, "app", "v1", &m1);
    put(&reg, "app", "v2", &m2);
    put(&reg, "app", "v1", &m2); // v1 moves: m1 is untagged now
    let (d1, d2) = (digest(&m1), digest(&m2));
    // Referrers: one to the kept manifest (stays), one to the untagged one (goes).
    let sig2 = manifest(&config, &[], Some((&d2, m2.len())));
    let sig1 = manifest(&config, &[&a], Some((&d1, m1.len())));
    put(&reg, "app", &digest(&sig2), &sig2);
    put(&reg, "app", &digest(&sig1), &sig1);
    // An upload in flight.
    let start = reg
        .http
        .post(reg.url("/v2/app/blobs/uploads/"))
        .send()
        .unwrap();
    let session = start.headers()["Location"].to_str().unwrap().to_string();
    reg.http
        .patch(reg.url(&session))
        .body("par")
        .send()
        .unwrap();

    // Everything is younger than the default grace period: nothing goes.
    let out = gc(&root, &[]);
    assert!(out.contains("removed 0 manifests, 0 blobs"), "{out}");

    let out = gc(&root, &["--grace", "0s", "--dry-run"]);
    assert!(
        out.contains(&format!("would remove manifest app@{d1}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("would remove blob {a}"))
            && out.contains(&format!("would remove blob {unused}")),
        "{out}"
    );
    assert!(blob_file(&root, &a).exists(), "a dry run removes nothing");

    let out = gc(&root, &["--grace", "0s"]);
    // m1 and sig1; blobs: a, unused, and the bytes of m1 and sig1.
    assert!(out.contains("removed 2 manifests, 4 blobs"), "{out}");
    for gone in [&a, &unused] {
        assert!(!blob_file(&root, gone).exists(), "{gone}");
    }
    let get = |path: &str| {
        reg.http
            .get(reg.url(path))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(get(&format!("/v2/app/manifests/{d1}")), 404);
    for tag in ["v1", "v2"] {
        assert_eq!(get(&format!("/v2/app/manifests/{tag}")), 200);
    }
    for kept in [&config, &b, &c] {
        assert_eq!(get(&format!("/v2/app/blobs/{kept}")), 200, "{kept}");
    }
    let referrers: serde_json::Value = reg
        .http
        .get(reg.url(&format!("/v2/app/referrers/{d2}")))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(referrers["manifests"][0]["digest"], digest(&sig2));
    // The upload in flight goes on.
    let rest = b"partial".to_vec();
    let r = reg
        .http
        .put(reg.url(&format!("{session}?digest={}", digest(&rest))))
        .header("Content-Range", "3-6")
        .body(rest[3..].to_vec())
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
}

#[test]
fn a_blob_a_push_claims_survives_and_old_garbage_goes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let reg = Registry::start(&root, &[]);
    let config = reg.push_blob("app", b"{}");
    let old_layer = reg.push_blob("app", b"pushed long ago, used by nothing yet");
    let garbage = reg.push_blob("app", b"pushed long ago, never used");
    age(&root);
    // A push that uses the old layer renews its link: the collection keeps it even with
    // the grace period, while the equally old garbage goes.
    put(&reg, "app", "v1", &manifest(&config, &[&old_layer], None));
    let out = gc(&root, &["--grace", "1h"]);
    assert!(out.contains(&format!("removed blob {garbage}")), "{out}");
    assert!(!out.contains(&old_layer), "{out}");
    assert_eq!(
        reg.http
            .get(reg.url(&format!("/v2/app/blobs/{old_layer}")))
            .send()
            .unwrap()
            .status(),
        200
    );
    assert!(
        std::fs::read_dir(root.join("_trash")).map_or(0, |d| d.count()) == 0,
        "nothing left aside"
    );
}
