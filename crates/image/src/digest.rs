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

    /// The diffID as a digest.
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
    /// sha256: everything kiln writes.
    Sha256(Sha256),
    /// sha512: accepted on read.
    Sha512(Sha512),
}

impl Hasher {
    /// A sha256 hasher.
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

    /// Hashes `data` next.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// The digest of everything given.
    pub fn finish(self) -> Digest {
        match self {
            Hasher::Sha256(h) => from_sha256_bytes(&h.finalize()),
            Hasher::Sha512(h) => format!("sha512:{}", hex::encode(h.finalize()))
                .parse()
                .expect("valid sha512"),
        }
    }
}

/// How much of a stream [`StreamHasher`] hands to its thread at once.
const PIECE: usize = 1 << 20;

/// Hashes a stream on a thread of its own once it is longer than a piece, so that on two
/// cores hashing a large layer overlaps the reads and writes that make it (each costs
/// about as much as the other). The first piece is hashed inline as it comes, so a short
/// stream (a manifest, a small file) is neither copied nor given a buffer. At most three
/// pieces are in flight, so memory stays flat whatever the stream's length.
pub struct StreamHasher {
    /// Bytes hashed inline so far (at most a piece).
    inline: usize,
    piece: Vec<u8>,
    state: Stream,
}

enum Stream {
    Inline(Hasher),
    Thread {
        pieces: std::sync::mpsc::SyncSender<Vec<u8>>,
        spare: std::sync::mpsc::Receiver<Vec<u8>>,
        hashed: std::thread::JoinHandle<Hasher>,
    },
}

impl StreamHasher {
    /// A stream hasher of `hasher`'s algorithm (and state).
    pub fn new(hasher: Hasher) -> Self {
        StreamHasher {
            inline: 0,
            piece: Vec::new(),
            state: Stream::Inline(hasher),
        }
    }

    /// Hashes `data` next (on the thread once the stream is longer than a piece).
    pub fn update(&mut self, mut data: &[u8]) {
        if let Stream::Inline(hasher) = &mut self.state {
            let take = (PIECE - self.inline).min(data.len());
            hasher.update(&data[..take]);
            self.inline += take;
            data = &data[take..];
        }
        while !data.is_empty() {
            if self.piece.capacity() == 0 {
                self.piece.reserve_exact(PIECE);
            }
            let take = (PIECE - self.piece.len()).min(data.len());
            self.piece.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.piece.len() == PIECE {
                self.hand_over();
            }
        }
    }

    /// Gives the full piece to the hashing thread (started on the first), taking back a
    /// hashed one to fill next.
    fn hand_over(&mut self) {
        if let Stream::Inline(hasher) = &mut self.state {
            let (pieces, for_thread) = std::sync::mpsc::sync_channel::<Vec<u8>>(1);
            let (give_back, spare) = std::sync::mpsc::channel();
            let mut moved = hasher.clone();
            let started = std::thread::Builder::new()
                .name("hash".into())
                .spawn(move || {
                    for mut piece in for_thread {
                        moved.update(&piece);
                        piece.clear();
                        let _ = give_back.send(piece);
                    }
                    moved
                });
            match started {
                Ok(hashed) => {
                    self.state = Stream::Thread {
                        pieces,
                        spare,
                        hashed,
                    }
                }
                // No thread to be had: hash here, as a short stream is.
                Err(_) => {
                    hasher.update(&self.piece);
                    self.piece.clear();
                    return;
                }
            }
        }
        let Stream::Thread { pieces, spare, .. } = &self.state else {
            unreachable!("the thread was started above")
        };
        let next = spare.try_recv().unwrap_or_default();
        let full = std::mem::replace(&mut self.piece, next);
        pieces
            .send(full)
            .expect("the hashing thread runs until its channel closes");
    }

    /// The digest of everything given, once the thread has hashed it all.
    pub fn finish(self) -> Digest {
        match self.state {
            Stream::Inline(mut hasher) => {
                hasher.update(&self.piece);
                hasher.finish()
            }
            Stream::Thread { pieces, hashed, .. } => {
                if !self.piece.is_empty() {
                    pieces
                        .send(self.piece)
                        .expect("the hashing thread runs until its channel closes");
                }
                drop(pieces);
                hashed.join().expect("hashing does not panic").finish()
            }
        }
    }
}

/// Hands everything `reader` gives to `each`, in reads of 64 KiB that grow to a
/// megabyte once one fills its buffer: most files (of a build context) are small, and a
/// large one is read in few system calls (8 KiB reads were most of a 1 GiB COPY's
/// system-call time).
pub fn read_in_pieces(reader: &mut dyn io::Read, mut each: impl FnMut(&[u8])) -> io::Result<()> {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                each(&buf[..n]);
                if n == buf.len() && buf.len() < PIECE {
                    buf.resize(PIECE, 0);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// A writer that hashes and counts what passes through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: StreamHasher,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Writes to `inner`, hashing with `hasher`.
    pub fn new(inner: W, hasher: Hasher) -> Self {
        HashingWriter {
            inner,
            hasher: StreamHasher::new(hasher),
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
    /// Reads from `inner`, hashing with `hasher`.
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes that differ at every offset, so a piece hashed twice, dropped or out of
    /// order changes the digest.
    fn stream(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + i / 251) as u8).collect()
    }

    #[test]
    fn a_stream_hashed_on_a_thread_in_odd_pieces_has_the_one_shot_digest() {
        for len in [0, 1, PIECE - 1, PIECE, PIECE + 1, 3 * PIECE + 12_345] {
            let data = stream(len);
            let mut hasher = StreamHasher::new(Hasher::sha256());
            for chunk in data.chunks(65_537) {
                hasher.update(chunk);
            }
            assert_eq!(hasher.finish(), sha256(&data), "length {len}");
            let mut read = StreamHasher::new(Hasher::sha256());
            read_in_pieces(&mut data.as_slice(), |piece| read.update(piece)).unwrap();
            assert_eq!(read.finish(), sha256(&data), "length {len}, read");
        }
    }

    #[test]
    fn a_sha512_stream_on_a_thread_keeps_its_algorithm() {
        let data = stream(2 * PIECE + 7);
        let mut hasher = StreamHasher::new(Hasher::Sha512(Sha512::new()));
        hasher.update(&data);
        let expected = format!("sha512:{}", hex::encode(Sha512::digest(&data)));
        assert_eq!(hasher.finish().to_string(), expected);
    }
}
