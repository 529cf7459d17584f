//! Content digests: sha256 for everything kiln writes, sha512 accepted on read.

use std::io::{self, Write};

pub use oci_spec::image::Digest;
use oci_spec::image::DigestAlgorithm;
use sha2::{Digest as _, Sha256, Sha512};

use crate::error::{Error, Result};

/// Parses `algorithm:hex`, accepting only sha256 and sha512 with well-formed hex.
pub fn parse(s: &str) -> Result<Digest> {
    let invalid = |reason: &str| Error::InvalidDigest {
        digest: s.to_string(),
        reason: reason.to_string(),
    };
    let digest: Digest = s.parse().map_err(|e| invalid(&format!("{e}")))?;
    match digest.algorithm() {
        DigestAlgorithm::Sha256 | DigestAlgorithm::Sha512 => Ok(digest),
        _ => Err(invalid("only sha256 and sha512 digests are supported")),
    }
}

/// A layer's diffID: the digest of its uncompressed tar, as an image config's
/// `rootfs.diff_ids` lists it. A type of its own, so that it is never taken for the digest
/// of a (compressed) blob, which names the same layer differently.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct DiffId(Digest);

impl DiffId {
    /// Parses `algorithm:hex` as [`parse`] does.
    pub fn parse(s: &str) -> Result<DiffId> {
        parse(s).map(DiffId)
    }

    pub fn digest(&self) -> &Digest {
        &self.0
    }

    /// The hex part (what names a snapshot directory).
    pub fn hex(&self) -> &str {
        self.0.digest()
    }
}

impl From<Digest> for DiffId {
    fn from(digest: Digest) -> DiffId {
        DiffId(digest)
    }
}

impl std::fmt::Display for DiffId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The sha256 digest of `bytes`.
pub fn sha256(bytes: &[u8]) -> Digest {
    from_sha256_bytes(&Sha256::digest(bytes))
}

fn from_sha256_bytes(bytes: &[u8]) -> Digest {
    format!("sha256:{}", hex::encode(bytes))
        .parse()
        .expect("a sha256 hex string is a valid digest")
}

/// Incremental hashing for one algorithm.
#[derive(Clone)]
pub enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Hasher {
    pub fn sha256() -> Self {
        Hasher::Sha256(Sha256::new())
    }

    /// A hasher for the algorithm of `digest` (to verify it).
    pub fn for_digest(digest: &Digest) -> Self {
        match digest.algorithm() {
            DigestAlgorithm::Sha512 => Hasher::Sha512(Sha512::new()),
            _ => Hasher::sha256(),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    pub fn finish(self) -> Digest {
        match self {
            Hasher::Sha256(h) => from_sha256_bytes(&h.finalize()),
            Hasher::Sha512(h) => format!("sha512:{}", hex::encode(h.finalize()))
                .parse()
                .expect("valid sha512"),
        }
    }
}

/// A writer that hashes and counts what passes through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W, hasher: Hasher) -> Self {
        HashingWriter {
            inner,
            hasher,
            written: 0,
        }
    }

    /// The inner writer, the digest and the byte count.
    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, self.hasher.finish(), self.written)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes what is read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
}

impl<R: io::Read> HashingReader<R> {
    pub fn new(inner: R, hasher: Hasher) -> Self {
        HashingReader { inner, hasher }
    }

    /// Reads what is left, then gives the digest of everything read.
    pub fn finish(mut self) -> io::Result<Digest> {
        io::copy(&mut self, &mut io::sink())?;
        Ok(self.hasher.finish())
    }
}

impl<R: io::Read> io::Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}
