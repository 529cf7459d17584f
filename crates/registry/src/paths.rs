//! The storage layout, the whole tree in one place:
//!
//! ```text
//! blobs/<alg>/<hex>                                     every blob and manifest, once
//! repositories/<name>/_layers/<alg>/<hex>               link: the blob is in <name>
//! repositories/<name>/_manifests/revisions/<alg>/<hex>  link: the manifest is in <name>;
//!                                                       holds its media type
//! repositories/<name>/_manifests/tags/<tag>             holds the tagged digest
//! repositories/<name>/_uploads/<session>/started        an upload session (its start time)
//! repositories/<name>/_uploads/<session>/data           the bytes received so far
//! repositories/<name>/_referrers/<alg>/<hex>/<alg>-<hex> a manifest whose subject is
//!                                                       <alg>:<hex>: its descriptor (JSON)
//! ```
//!
//! Repository name components start with a letter or digit, so they never collide with
//! the `_` entries.

use kiln_image::digest::Digest;

fn split(d: &Digest) -> (&str, &str) {
    let s: &str = d.as_ref();
    s.split_once(':').unwrap_or(("sha256", s))
}

pub fn blob(d: &Digest) -> String {
    let (alg, hex) = split(d);
    format!("blobs/{alg}/{hex}")
}

pub fn repo(name: &str) -> String {
    format!("repositories/{name}")
}

pub fn layer_link(name: &str, d: &Digest) -> String {
    let (alg, hex) = split(d);
    format!("repositories/{name}/_layers/{alg}/{hex}")
}

pub fn revision(name: &str, d: &Digest) -> String {
    let (alg, hex) = split(d);
    format!("repositories/{name}/_manifests/revisions/{alg}/{hex}")
}

pub fn revisions(name: &str) -> String {
    format!("repositories/{name}/_manifests/revisions")
}

pub fn tags(name: &str) -> String {
    format!("repositories/{name}/_manifests/tags")
}

pub fn tag(name: &str, tag: &str) -> String {
    format!("repositories/{name}/_manifests/tags/{tag}")
}

pub fn upload(name: &str, session: &str) -> String {
    format!("repositories/{name}/_uploads/{session}")
}

pub fn uploads(name: &str) -> String {
    format!("repositories/{name}/_uploads")
}

pub fn upload_started(name: &str, session: &str) -> String {
    format!("repositories/{name}/_uploads/{session}/started")
}

pub fn upload_data(name: &str, session: &str) -> String {
    format!("repositories/{name}/_uploads/{session}/data")
}

pub fn referrers(name: &str, subject: &Digest) -> String {
    let (alg, hex) = split(subject);
    format!("repositories/{name}/_referrers/{alg}/{hex}")
}

pub fn referrer(name: &str, subject: &Digest, manifest: &Digest) -> String {
    let (alg, hex) = split(manifest);
    format!("{}/{alg}-{hex}", referrers(name, subject))
}
