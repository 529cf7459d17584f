//! Megabyte buffers for serving blobs from files, kept for reuse: a pull takes a few and
//! gives them back when the socket has sent them, and the next pull takes the same
//! memory instead of the allocator's (which keeps freed buffers of this size in its
//! arenas anyway, so the server's memory grew with each burst of concurrent pulls).

use std::sync::Mutex;

use bytes::Bytes;

/// The size of one read from a blob file.
pub const PIECE: usize = 1 << 20;

/// How many spare pieces are kept; more are freed.
const KEPT: usize = 16;

static SPARE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// An empty buffer of [`PIECE`] capacity.
pub fn take() -> Vec<u8> {
    SPARE
        .lock()
        .expect("spare pieces lock")
        .pop()
        .unwrap_or_else(|| Vec::with_capacity(PIECE))
}

/// Returns a buffer from [`take`] for reuse.
pub fn give_back(mut piece: Vec<u8>) {
    piece.clear();
    let mut spare = SPARE.lock().expect("spare pieces lock");
    if piece.capacity() == PIECE && spare.len() < KEPT {
        spare.push(piece);
    }
}

/// A filled buffer as `Bytes` for the response body; its memory comes back for reuse
/// when the body has been sent.
pub fn into_bytes(piece: Vec<u8>) -> Bytes {
    Bytes::from_owner(Piece(piece))
}

struct Piece(Vec<u8>);

impl AsRef<[u8]> for Piece {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Piece {
    fn drop(&mut self) {
        give_back(std::mem::take(&mut self.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_piece_sent_as_bytes_is_reused_once_the_bytes_are_dropped() {
        let mut piece = take();
        piece.extend_from_slice(b"layer bytes");
        let at = piece.as_ptr();
        let bytes = into_bytes(piece);
        assert_eq!(&bytes[..], b"layer bytes");
        let clone = bytes.clone();
        drop(bytes);
        drop(clone);
        // Tests run on threads of one process: another test may take the piece first, so
        // look for it among the spares rather than expecting it on top.
        let spare = SPARE.lock().unwrap();
        assert!(spare.iter().any(|p| p.as_ptr() == at && p.is_empty()));
    }
}
