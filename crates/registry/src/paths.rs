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

/// The blob (or manifest) `d`, shared by every repository.
pub fn blob(d: &Digest) -> String {
    let (alg, hex) = split(d);
    format!("blobs/{alg}/{hex}")
}

/// Everything of repository `name`.
pub fn repo(name: &str) -> String {
    format!("repositories/{name}")
}

/// The link that puts blob `d` in repository `name`.
pub fn layer_link(name: &str, d: &Digest) -> String {
    let (alg, hex) = split(d);
    format!("repositories/{name}/_layers/{alg}/{hex}")
}

/// The link that puts manifest `d` in repository `name` (it holds the media type).
pub fn revision(name: &str, d: &Digest) -> String {
    let (alg, hex) = split(d);
    format!("repositories/{name}/_manifests/revisions/{alg}/{hex}")
}

/// The manifest links of repository `name`.
pub fn revisions(name: &str) -> String {
    format!("repositories/{name}/_manifests/revisions")
}

/// The tags of repository `name`.
pub fn tags(name: &str) -> String {
    format!("repositories/{name}/_manifests/tags")
}

/// Tag `tag` of repository `name` (it holds the digest).
pub fn tag(name: &str, tag: &str) -> String {
    format!("repositories/{name}/_manifests/tags/{tag}")
}

/// Upload session `session` of repository `name`.
pub fn upload(name: &str, session: &str) -> String {
    format!("repositories/{name}/_uploads/{session}")
}

/// The upload sessions of repository `name`.
pub fn uploads(name: &str) -> String {
    format!("repositories/{name}/_uploads")
}

/// When the session started (for expiry).
pub fn upload_started(name: &str, session: &str) -> String {
    format!("repositories/{name}/_uploads/{session}/started")
}

/// The session's bytes received so far.
pub fn upload_data(name: &str, session: &str) -> String {
    format!("repositories/{name}/_uploads/{session}/data")
}

/// The referrers of manifest `subject` in repository `name`.
pub fn referrers(name: &str, subject: &Digest) -> String {
    let (alg, hex) = split(subject);
    format!("repositories/{name}/_referrers/{alg}/{hex}")
}

/// The descriptor of `manifest`, a referrer of `subject`.
pub fn referrer(name: &str, subject: &Digest, manifest: &Digest) -> String {
    let (alg, hex) = split(manifest);
    format!("{}/{alg}-{hex}", referrers(name, subject))
}
