//! `kiln registry serve` against the OCI distribution spec, endpoint by endpoint and error
//! code by error code, over real HTTP on 127.0.0.1.

use kiln_testkit::{code, digest, Registry};
use reqwest::blocking::Response;
use serde_json::json;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn start() -> (tempfile::TempDir, Registry) {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::start(&dir.path().join("store"), &[]);
    (dir, reg)
}

fn header(r: &Response, name: &str) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// An image manifest over a config and layers that are pushed first.
fn image(reg: &Registry, name: &str, layers: &[&[u8]]) -> (serde_json::Value, Vec<String>) {
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let c = reg.push_blob(name, config);
    let mut digests = vec![c.clone()];
    let layers: Vec<serde_json::Value> = layers
        .iter()
        .map(|l| {
            let d = reg.push_blob(name, l);
            digests.push(d.clone());
            json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": l.len()})
        })
        .collect();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": c, "size": config.len()},
        "layers": layers,
    });
    (manifest, digests)
}

#[test]
fn the_base_endpoint_answers_with_the_api_version() {
    let (_d, reg) = start();
    let r = reg.http.get(reg.url("/v2/")).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "Docker-Distribution-API-Version"),
        "registry/2.0"
    );
    let r = reg.http.get(reg.url("/v2/a/nothing/here")).send().unwrap();
    assert_eq!(r.status(), 404);
}

#[test]
fn blobs_go_up_whole_or_in_chunks_and_come_back_whole_or_by_range() {
    let (_d, reg) = start();
    let data: Vec<u8> = (0..100_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let d = reg.push_blob("a/b", &data);

    let head = reg
        .http
        .head(reg.url(&format!("/v2/a/b/blobs/{d}")))
        .send()
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(header(&head, "Content-Length"), data.len().to_string());
    assert_eq!(header(&head, "Docker-Content-Digest"), d);
    let got = reg
        .http
        .get(reg.url(&format!("/v2/a/b/blobs/{d}")))
        .send()
        .unwrap();
    assert_eq!(got.bytes().unwrap().as_ref(), data.as_slice());
    let part = reg
        .http
        .get(reg.url(&format!("/v2/a/b/blobs/{d}")))
        .header("Range", "bytes=10-19")
        .send()
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(
        header(&part, "Content-Range"),
        format!("bytes 10-19/{}", data.len())
    );
    assert_eq!(part.bytes().unwrap().as_ref(), &data[10..20]);
    let beyond = reg
        .http
        .get(reg.url(&format!("/v2/a/b/blobs/{d}")))
        .header("Range", format!("bytes={}-", data.len()))
        .send()
        .unwrap();
    assert_eq!(beyond.status(), 416);

    // Chunked: POST, PATCH in order (out of order is refused with where it stands), GET
    // status, PUT with the last chunk.
    let start = reg
        .http
        .post(reg.url("/v2/a/c/blobs/uploads/"))
        .send()
        .unwrap();
    assert_eq!(start.status(), 202);
    assert_eq!(header(&start, "Range"), "0-0");
    let location = reg.url(&header(&start, "Location"));
    let patch = |from: usize, to: usize| {
        reg.http
            .patch(&location)
            .header("Content-Range", format!("{from}-{}", to - 1))
            .body(data[from..to].to_vec())
            .send()
            .unwrap()
    };
    let r = patch(0, 150_000);
    assert_eq!(r.status(), 202);
    assert_eq!(header(&r, "Range"), "0-149999");
    let r = patch(200_000, 250_000);
    assert_eq!(r.status(), 416);
    assert_eq!(header(&r, "Range"), "0-149999");
    let r = patch(150_000, 300_000);
    assert_eq!(r.status(), 202);
    let status = reg.http.get(&location).send().unwrap();
    assert_eq!(status.status(), 204);
    assert_eq!(header(&status, "Range"), "0-299999");
    let done = reg
        .http
        .put(format!("{location}?digest={d}"))
        .header("Content-Range", format!("300000-{}", data.len() - 1))
        .body(data[300_000..].to_vec())
        .send()
        .unwrap();
    assert_eq!(done.status(), 201);
    assert_eq!(header(&done, "Location"), format!("/v2/a/c/blobs/{d}"));
    assert_eq!(header(&done, "Docker-Content-Digest"), d);
    let back = reg
        .http
        .get(reg.url(&format!("/v2/a/c/blobs/{d}")))
        .send()
        .unwrap();
    assert_eq!(back.bytes().unwrap().as_ref(), data.as_slice());
    // The session is gone once closed.
    assert_eq!(
        code(reg.http.get(&location).send().unwrap()),
        (404, "BLOB_UPLOAD_UNKNOWN".into())
    );
}

#[test]
fn a_wrong_digest_stores_nothing_and_a_cancelled_upload_is_gone() {
    let (_d, reg) = start();
    let claimed = digest(b"what the client meant");
    let r = reg
        .http
        .post(reg.url(&format!("/v2/x/blobs/uploads/?digest={claimed}")))
        .body(b"something else".to_vec())
        .send()
        .unwrap();
    assert_eq!(code(r), (400, "DIGEST_INVALID".into()));
    let head = reg
        .http
        .head(reg.url(&format!("/v2/x/blobs/{claimed}")))
        .send()
        .unwrap();
    assert_eq!(head.status(), 404);
    let actual = digest(b"something else");
    assert_eq!(
        code(
            reg.http
                .get(reg.url(&format!("/v2/x/blobs/{actual}")))
                .send()
                .unwrap()
        ),
        (404, "BLOB_UNKNOWN".into())
    );
    assert!(!reg.root.join("blobs/sha256").join(&actual[7..]).exists());

    let start = reg
        .http
        .post(reg.url("/v2/x/blobs/uploads/"))
        .send()
        .unwrap();
    let location = reg.url(&header(&start, "Location"));
    let r = reg
        .http
        .patch(&location)
        .body(b"partial".to_vec())
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(reg.http.delete(&location).send().unwrap().status(), 204);
    assert_eq!(
        code(reg.http.get(&location).send().unwrap()),
        (404, "BLOB_UPLOAD_UNKNOWN".into())
    );
    let r = reg
        .http
        .put(format!("{location}?digest={actual}"))
        .send()
        .unwrap();
    assert_eq!(code(r), (404, "BLOB_UPLOAD_UNKNOWN".into()));
    let r = reg
        .http
        .put(reg.url("/v2/x/blobs/uploads/0123456789abcdef0123456789abcdef"))
        .send()
        .unwrap();
    assert_eq!(
        code(r),
        (400, "DIGEST_INVALID".into()),
        "a closing PUT needs a digest"
    );
    // Bad digests and a malformed Content-Range.
    let r = reg
        .http
        .get(reg.url("/v2/x/blobs/sha256:1234"))
        .send()
        .unwrap();
    assert_eq!(code(r), (400, "DIGEST_INVALID".into()));
    let start = reg
        .http
        .post(reg.url("/v2/x/blobs/uploads/"))
        .send()
        .unwrap();
    let location = reg.url(&header(&start, "Location"));
    let r = reg
        .http
        .patch(&location)
        .header("Content-Range", "nonsense")
        .body("x")
        .send()
        .unwrap();
    assert_eq!(r.status(), 416);
}

#[test]
fn blobs_mount_across_repositories_and_unlink_on_delete() {
    let (_d, reg) = start();
    let d = reg.push_blob("src/repo", b"shared layer");
    let r = reg
        .http
        .post(reg.url(&format!(
            "/v2/dst/repo/blobs/uploads/?mount={d}&from=src/repo"
        )))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(header(&r, "Location"), format!("/v2/dst/repo/blobs/{d}"));
    assert_eq!(
        reg.http
            .head(reg.url(&format!("/v2/dst/repo/blobs/{d}")))
            .send()
            .unwrap()
            .status(),
        200
    );
    // A blob the source does not hold: an ordinary upload starts instead.
    let other = digest(b"nowhere");
    let r = reg
        .http
        .post(reg.url(&format!(
            "/v2/dst/repo/blobs/uploads/?mount={other}&from=src/repo"
        )))
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    // A blob is only visible in the repositories it was pushed or mounted to.
    assert_eq!(
        reg.http
            .head(reg.url(&format!("/v2/third/blobs/{d}")))
            .send()
            .unwrap()
            .status(),
        404
    );

    assert_eq!(
        reg.http
            .delete(reg.url(&format!("/v2/dst/repo/blobs/{d}")))
            .send()
            .unwrap()
            .status(),
        202
    );
    assert_eq!(
        reg.http
            .head(reg.url(&format!("/v2/dst/repo/blobs/{d}")))
            .send()
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        reg.http
            .head(reg.url(&format!("/v2/src/repo/blobs/{d}")))
            .send()
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        code(
            reg.http
                .delete(reg.url(&format!("/v2/dst/repo/blobs/{d}")))
                .send()
                .unwrap()
        ),
        (404, "BLOB_UNKNOWN".into())
    );
}

#[test]
fn manifests_are_validated_stored_negotiated_and_deleted() {
    let (_d, reg) = start();
    let (manifest, blobs) = image(&reg, "app", &[b"layer one", b"layer two"]);
    let body = serde_json::to_vec(&manifest).unwrap();
    let d = digest(&body);

    // Refused: a missing blob, bad JSON, an unknown media type, a mismatched mediaType,
    // a digest reference the body does not have.
    let mut missing = manifest.clone();
    missing["layers"][0]["digest"] = json!(digest(b"never pushed"));
    let r = reg.put_manifest(
        "app",
        "v1",
        OCI_MANIFEST,
        &serde_json::to_vec(&missing).unwrap(),
    );
    assert_eq!(code(r), (400, "MANIFEST_BLOB_UNKNOWN".into()));
    assert_eq!(
        code(reg.put_manifest("app", "v1", OCI_MANIFEST, b"{not json")),
        (400, "MANIFEST_INVALID".into())
    );
    assert_eq!(
        code(reg.put_manifest("app", "v1", "text/plain", &body)),
        (400, "MANIFEST_INVALID".into())
    );
    assert_eq!(
        code(reg.put_manifest("app", "v1", OCI_INDEX, &body)),
        (400, "MANIFEST_INVALID".into())
    );
    let wrong = digest(b"other bytes");
    assert_eq!(
        code(reg.put_manifest("app", &wrong, OCI_MANIFEST, &body)),
        (400, "DIGEST_INVALID".into())
    );
    let big = vec![b' '; 5 << 20];
    assert_eq!(
        code(reg.put_manifest("app", "big", OCI_MANIFEST, &big)),
        (413, "SIZE_INVALID".into())
    );
    assert_eq!(
        code(reg.put_manifest("app", "-bad-tag", OCI_MANIFEST, &body)),
        (400, "MANIFEST_INVALID".into())
    );
    assert_eq!(
        code(
            reg.http
                .get(reg.url("/v2/app/manifests/v1"))
                .send()
                .unwrap()
        ),
        (404, "MANIFEST_UNKNOWN".into()),
        "nothing refused was stored"
    );

    let r = reg.put_manifest("app", "v1", OCI_MANIFEST, &body);
    assert_eq!(r.status(), 201);
    assert_eq!(header(&r, "Docker-Content-Digest"), d);
    assert_eq!(header(&r, "Location"), format!("/v2/app/manifests/{d}"));
    for reference in ["v1", d.as_str()] {
        let got = reg
            .http
            .get(reg.url(&format!("/v2/app/manifests/{reference}")))
            .header("Accept", format!("{OCI_MANIFEST}, {OCI_INDEX}"))
            .send()
            .unwrap();
        assert_eq!(got.status(), 200);
        assert_eq!(header(&got, "Content-Type"), OCI_MANIFEST);
        assert_eq!(header(&got, "Docker-Content-Digest"), d);
        assert_eq!(
            got.bytes().unwrap().as_ref(),
            body.as_slice(),
            "byte for byte"
        );
        let head = reg
            .http
            .head(reg.url(&format!("/v2/app/manifests/{reference}")))
            .send()
            .unwrap();
        assert_eq!(head.status(), 200);
        assert_eq!(header(&head, "Content-Length"), body.len().to_string());
    }
    let docker_only = reg
        .http
        .get(reg.url("/v2/app/manifests/v1"))
        .header(
            "Accept",
            "application/vnd.docker.distribution.manifest.v2+json",
        )
        .send()
        .unwrap();
    assert_eq!(code(docker_only), (404, "MANIFEST_UNKNOWN".into()));

    // An index over the manifest; one over a missing child is refused.
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": d, "size": body.len(), "platform": {"os": "linux", "architecture": "amd64"}}
    ]});
    let r = reg.put_manifest(
        "app",
        "multi",
        OCI_INDEX,
        &serde_json::to_vec(&index).unwrap(),
    );
    assert_eq!(r.status(), 201);
    let mut bad_index = index.clone();
    bad_index["manifests"][0]["digest"] = json!(wrong);
    let r = reg.put_manifest(
        "app",
        "multi2",
        OCI_INDEX,
        &serde_json::to_vec(&bad_index).unwrap(),
    );
    assert_eq!(code(r), (400, "MANIFEST_BLOB_UNKNOWN".into()));

    // Deleting a tag leaves the manifest; deleting by digest removes it and its tags.
    assert_eq!(
        reg.http
            .delete(reg.url("/v2/app/manifests/multi"))
            .send()
            .unwrap()
            .status(),
        202
    );
    assert_eq!(
        reg.http
            .get(reg.url("/v2/app/manifests/multi"))
            .send()
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        reg.http
            .delete(reg.url(&format!("/v2/app/manifests/{d}")))
            .send()
            .unwrap()
            .status(),
        202
    );
    assert_eq!(
        reg.http
            .get(reg.url("/v2/app/manifests/v1"))
            .send()
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        reg.http
            .get(reg.url(&format!("/v2/app/manifests/{d}")))
            .send()
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        code(
            reg.http
                .delete(reg.url(&format!("/v2/app/manifests/{d}")))
                .send()
                .unwrap()
        ),
        (404, "MANIFEST_UNKNOWN".into())
    );
    // Its blobs stay until garbage collection.
    assert_eq!(
        reg.http
            .head(reg.url(&format!("/v2/app/blobs/{}", blobs[1])))
            .send()
            .unwrap()
            .status(),
        200
    );
}

#[test]
fn tags_and_the_catalog_page_with_n_and_last() {
    let (_d, reg) = start();
    let (manifest, _) = image(&reg, "lib/one", &[b"l"]);
    let body = serde_json::to_vec(&manifest).unwrap();
    for tag in ["b", "a", "d", "c", "e"] {
        assert_eq!(
            reg.put_manifest("lib/one", tag, OCI_MANIFEST, &body)
                .status(),
            201
        );
    }
    image(&reg, "lib/two", &[b"m"]);
    image(&reg, "zed", &[b"n"]);

    let r = reg
        .http
        .get(reg.url("/v2/lib/one/tags/list?n=2"))
        .send()
        .unwrap();
    assert_eq!(
        header(&r, "Link"),
        "</v2/lib/one/tags/list?n=2&last=b>; rel=\"next\""
    );
    let page: serde_json::Value = r.json().unwrap();
    assert_eq!(page, json!({"name": "lib/one", "tags": ["a", "b"]}));
    let r = reg
        .http
        .get(reg.url("/v2/lib/one/tags/list?n=2&last=d"))
        .send()
        .unwrap();
    assert_eq!(header(&r, "Link"), "");
    assert_eq!(r.json::<serde_json::Value>().unwrap()["tags"], json!(["e"]));
    let all: serde_json::Value = reg
        .http
        .get(reg.url("/v2/lib/one/tags/list"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(all["tags"], json!(["a", "b", "c", "d", "e"]));
    assert_eq!(
        code(
            reg.http
                .get(reg.url("/v2/nobody/tags/list"))
                .send()
                .unwrap()
        ),
        (404, "NAME_UNKNOWN".into())
    );
    assert_eq!(
        code(
            reg.http
                .get(reg.url("/v2/Upper/Case/tags/list"))
                .send()
                .unwrap()
        ),
        (400, "NAME_INVALID".into())
    );

    let r = reg.http.get(reg.url("/v2/_catalog?n=2")).send().unwrap();
    assert_eq!(
        header(&r, "Link"),
        "</v2/_catalog?n=2&last=lib%2Ftwo>; rel=\"next\""
    );
    assert_eq!(
        r.json::<serde_json::Value>().unwrap()["repositories"],
        json!(["lib/one", "lib/two"])
    );
    let r = reg
        .http
        .get(reg.url("/v2/_catalog?n=2&last=lib/two"))
        .send()
        .unwrap();
    assert_eq!(
        r.json::<serde_json::Value>().unwrap()["repositories"],
        json!(["zed"])
    );
}

#[test]
fn referrers_list_the_manifests_whose_subject_is_given_and_filter_by_artifact_type() {
    let (_d, reg) = start();
    let (manifest, _) = image(&reg, "app", &[b"l"]);
    let body = serde_json::to_vec(&manifest).unwrap();
    let subject = digest(&body);
    // A referrer may come before its subject, as the spec requires.
    let empty = reg.push_blob("app", b"{}");
    let sbom = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/spdx+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": body.len()},
        "annotations": {"org.example": "sbom"},
    });
    let sbom_body = serde_json::to_vec(&sbom).unwrap();
    let sbom_digest = digest(&sbom_body);
    let r = reg.put_manifest("app", &sbom_digest, OCI_MANIFEST, &sbom_body);
    assert_eq!(r.status(), 201);
    assert_eq!(header(&r, "OCI-Subject"), subject);
    assert_eq!(
        reg.put_manifest("app", "v1", OCI_MANIFEST, &body).status(),
        201
    );

    let r = reg
        .http
        .get(reg.url(&format!("/v2/app/referrers/{subject}")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "Content-Type"), OCI_INDEX);
    assert_eq!(header(&r, "OCI-Filters-Applied"), "");
    let index: serde_json::Value = r.json().unwrap();
    assert_eq!(
        index["manifests"],
        json!([{"mediaType": OCI_MANIFEST, "digest": sbom_digest, "size": sbom_body.len(),
                "artifactType": "application/spdx+json", "annotations": {"org.example": "sbom"}}])
    );
    let filtered = reg
        .http
        .get(reg.url(&format!(
            "/v2/app/referrers/{subject}?artifactType=application/other"
        )))
        .send()
        .unwrap();
    assert_eq!(header(&filtered, "OCI-Filters-Applied"), "artifactType");
    assert_eq!(
        filtered.json::<serde_json::Value>().unwrap()["manifests"],
        json!([])
    );
    let none = reg
        .http
        .get(reg.url(&format!("/v2/app/referrers/{}", digest(b"x"))))
        .send()
        .unwrap();
    assert_eq!(none.status(), 200);
    assert_eq!(
        none.json::<serde_json::Value>().unwrap()["manifests"],
        json!([])
    );

    // Deleting the referrer takes it off the list.
    reg.http
        .delete(reg.url(&format!("/v2/app/manifests/{sbom_digest}")))
        .send()
        .unwrap();
    let after: serde_json::Value = reg
        .http
        .get(reg.url(&format!("/v2/app/referrers/{subject}")))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(after["manifests"], json!([]));
}

#[test]
fn a_read_only_registry_serves_and_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let d = {
        let reg = Registry::start(&root, &[]);
        reg.push_blob("app", b"kept")
    };
    let reg = Registry::start(&root, &["--read-only"]);
    assert_eq!(
        reg.http
            .head(reg.url(&format!("/v2/app/blobs/{d}")))
            .send()
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        code(
            reg.http
                .post(reg.url("/v2/app/blobs/uploads/"))
                .send()
                .unwrap()
        ),
        (405, "UNSUPPORTED".into())
    );
    assert_eq!(
        code(
            reg.http
                .delete(reg.url(&format!("/v2/app/blobs/{d}")))
                .send()
                .unwrap()
        ),
        (405, "UNSUPPORTED".into())
    );
}

#[test]
fn operations_health_metrics_and_json_logs() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args([
            "registry",
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--log-json",
            "--root",
        ])
        .arg(dir.path().join("store"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let addr = line
        .split("://")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let http = reqwest::blocking::Client::new();
    let url = |p: &str| format!("http://{addr}{p}");
    assert_eq!(
        http.get(url("/healthz")).send().unwrap().text().unwrap(),
        "ok\n"
    );
    let data = b"some layer bytes".to_vec();
    let d = digest(&data);
    let r = http
        .post(url(&format!("/v2/m/blobs/uploads/?digest={d}")))
        .body(data.clone())
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    http.get(url(&format!("/v2/m/blobs/{d}"))).send().unwrap();
    http.get(url("/v2/m/tags/list")).send().unwrap();

    let text = http.get(url("/metrics")).send().unwrap().text().unwrap();
    for expected in [
        "kiln_registry_requests_total{method=\"POST\",route=\"upload\",status=\"201\"} 1",
        "kiln_registry_requests_total{method=\"GET\",route=\"blob\",status=\"200\"} 1",
        "kiln_registry_requests_total{method=\"GET\",route=\"tags\",status=\"404\"} 1",
        "kiln_registry_request_duration_seconds_count{route=\"blob\"} 1",
        "kiln_registry_storage_blobs 1",
        &format!("kiln_registry_storage_bytes {}", data.len()),
        &format!("kiln_registry_received_bytes_total {}", data.len()),
    ] {
        assert!(text.contains(expected), "{expected} in:\n{text}");
    }

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "SIGTERM ends it cleanly");
    let logs = String::from_utf8_lossy(&out.stderr);
    let request = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["fields"]["path"] == format!("/v2/m/blobs/{d}"))
        .unwrap_or_else(|| panic!("a JSON line for the blob GET in:\n{logs}"));
    assert_eq!(request["fields"]["status"], 200);
}

#[test]
fn a_chunk_whose_range_and_length_disagree_is_size_invalid() {
    let (_d, reg) = start();
    let start = reg
        .http
        .post(reg.url("/v2/s/blobs/uploads/"))
        .send()
        .unwrap();
    let location = reg.url(&header(&start, "Location"));
    let r = reg
        .http
        .patch(&location)
        .header("Content-Range", "0-99")
        .body(vec![0u8; 50])
        .send()
        .unwrap();
    assert_eq!(code(r), (400, "SIZE_INVALID".into()));
    let status = reg.http.get(&location).send().unwrap();
    assert_eq!(header(&status, "Range"), "0-0", "nothing was taken");
}

#[test]
fn a_refused_upload_leaves_no_session_and_no_repository() {
    let (dir, reg) = start();
    let r = reg
        .http
        .post(reg.url("/v2/phantom/blobs/uploads/?digest=sha256:nothex"))
        .body(b"x".to_vec())
        .send()
        .unwrap();
    assert_eq!(code(r), (400, "DIGEST_INVALID".into()));
    // A digest that does not match the body: refused too.
    let r = reg
        .http
        .post(reg.url(&format!(
            "/v2/ghost/blobs/uploads/?digest={}",
            digest(b"other")
        )))
        .body(b"x".to_vec())
        .send()
        .unwrap();
    assert_eq!(code(r), (400, "DIGEST_INVALID".into()));
    reg.push_blob("real/repo", b"data");
    let r = reg.http.get(reg.url("/v2/_catalog")).send().unwrap();
    let body: serde_json::Value = r.json().unwrap();
    assert_eq!(body["repositories"], json!(["real/repo"]));
    let store = dir.path().join("store/repositories");
    assert!(
        !store.join("phantom").exists(),
        "a session was made for a refused upload"
    );
    let sessions = std::fs::read_dir(store.join("ghost/_uploads"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(sessions, 0, "the refused session was removed");
}

#[test]
fn urls_excuse_a_missing_blob_only_for_non_distributable_layers() {
    let (_d, reg) = start();
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let c = reg.push_blob("u/app", config);
    let missing = digest(b"a layer this registry never got");
    let manifest = |media_type: &str| {
        json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": c, "size": config.len()},
            "layers": [{"mediaType": media_type, "digest": missing, "size": 31, "urls": ["https://example.com/layer"]}],
        })
        .to_string()
    };
    let r = reg.put_manifest(
        "u/app",
        "plain",
        OCI_MANIFEST,
        manifest("application/vnd.oci.image.layer.v1.tar+gzip").as_bytes(),
    );
    assert_eq!(code(r), (400, "MANIFEST_BLOB_UNKNOWN".into()));
    let r = reg.put_manifest(
        "u/app",
        "foreign",
        OCI_MANIFEST,
        manifest("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip").as_bytes(),
    );
    assert_eq!(r.status(), 201, "{:?}", r.text());
}
