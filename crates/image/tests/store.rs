//! The content store: atomic blobs, tags that concurrent writers never lose, collection.

use std::io::{self, Read};

use kiln_image::digest;
use kiln_image::store::Store;
use kiln_image::{Error, Reference};
use oci_spec::image::{Descriptor, MediaType};

fn files_in(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// A manifest blob (with its config and one layer) ready to tag.
fn image(store: &Store, content: &str) -> Descriptor {
    let layer = store.write_blob_bytes(content.as_bytes()).unwrap();
    let config = store
        .write_blob_bytes(
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
        )
        .unwrap();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":79}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer}","size":{}}}]}}"#,
        content.len()
    );
    let digest = store.write_blob_bytes(manifest.as_bytes()).unwrap();
    Descriptor::new(MediaType::ImageManifest, manifest.len() as u64, digest)
}

#[test]
fn a_blob_with_the_wrong_digest_is_not_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let wrong = digest::sha256(b"something else");
    let err = store
        .write_blob(&mut &b"content"[..], Some(&wrong))
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(!store.has_blob(&wrong));
    assert!(!store.has_blob(&digest::sha256(b"content")));
    assert_eq!(
        files_in(&tmp.path().join("ingest")),
        0,
        "the temporary file is gone"
    );
}

/// Fails after handing out some bytes, like a network or disk error mid-stream.
struct FailingReader(usize);

impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.0 == 0 {
            return Err(io::Error::other("injected failure"));
        }
        let n = buf.len().min(self.0);
        buf[..n].fill(b'x');
        self.0 -= n;
        Ok(n)
    }
}

#[test]
fn a_write_that_fails_midway_leaves_no_blob() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let err = store
        .write_blob(&mut FailingReader(3 << 20), None)
        .unwrap_err();
    assert!(err.to_string().contains("injected failure"), "{err}");
    assert_eq!(files_in(&tmp.path().join("blobs/sha256")), 0);
    assert_eq!(files_in(&tmp.path().join("ingest")), 0);
}

#[test]
fn concurrent_taggers_never_lose_a_tag() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let desc = image(&store, "layer");
    std::thread::scope(|s| {
        for t in 0..8 {
            let root = tmp.path().to_path_buf();
            let desc = desc.clone();
            s.spawn(move || {
                // A handle of its own, as another process would have.
                let store = Store::open(root).unwrap();
                for i in 0..15 {
                    store
                        .tag(&Reference::parse(&format!("app:t{t}-{i}")).unwrap(), &desc)
                        .unwrap();
                }
            });
        }
    });
    let tags: std::collections::BTreeSet<String> = store
        .records()
        .unwrap()
        .into_iter()
        .filter_map(|r| r.reference.map(|r| r.familiar()))
        .collect();
    assert_eq!(tags.len(), 8 * 15);
}

#[test]
fn retagging_keeps_the_old_image_untagged_and_gc_frees_only_unreachable_blobs() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let first = image(&store, "one");
    let second = image(&store, "two");
    let app = Reference::parse("app:1").unwrap();
    store.tag(&app, &first).unwrap();
    store.tag(&app, &second).unwrap();
    let records = store.records().unwrap();
    assert_eq!(records.len(), 2);
    assert!(records
        .iter()
        .any(|r| r.reference.is_none() && r.descriptor.digest() == first.digest()));
    let stray = store.write_blob_bytes(b"nobody needs me").unwrap();
    let report = store.gc().unwrap();
    assert_eq!(report.removed_blobs, [stray.to_string()]);
    assert!(
        store.has_blob(first.digest()),
        "the untagged image is kept until pruned"
    );
    store.remove_records(|r| r.reference.is_none()).unwrap();
    let report = store.gc().unwrap();
    assert_eq!(
        report.removed_blobs.len(),
        2,
        "manifest and layer of the old image (the config is shared)"
    );
    assert!(!store.has_blob(first.digest()));
    assert_eq!(
        store.resolve("app:1").unwrap().top.digest(),
        second.digest()
    );
}

#[test]
fn images_resolve_by_tag_digest_and_id_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let desc = image(&store, "x");
    store
        .tag(&Reference::parse("docker.io/library/app:2").unwrap(), &desc)
        .unwrap();
    let by_tag = store.resolve("app:2").unwrap();
    let id = by_tag.id().to_string();
    for name in [
        id.clone(),
        id[7..19].to_string(),
        format!("app@{}", desc.digest()),
        "docker.io/library/app:2".to_string(),
    ] {
        assert_eq!(
            store.resolve(&name).unwrap().top.digest(),
            desc.digest(),
            "{name}"
        );
    }
    let err = store.resolve("app:3").unwrap_err().to_string();
    assert!(err.contains("no such image: app:3"), "{err}");
}

#[test]
fn the_store_is_an_oci_layout() {
    let tmp = tempfile::tempdir().unwrap();
    Store::open(tmp.path()).unwrap();
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("oci-layout")).unwrap(),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("index.json")).unwrap()).unwrap();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["manifests"], serde_json::json!([]));
}
