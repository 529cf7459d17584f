//! The attach protocol: how `kiln run`, `kiln start -a` and `kiln attach` talk to a
//! container's supervisor over the Unix socket in the container's directory. Frames,
//! each an 8-byte header — Docker's stream header: the kind, three zero bytes, the
//! payload's length as a big-endian u32 — and the payload. Kinds 0, 1 and 2 are Docker's
//! stdin, stdout and stderr; the others carry what Docker's API says out of band.

use std::io::{self, Read, Write};

/// One message of the attach protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Client → supervisor: bytes for the container's standard input.
    Stdin(Vec<u8>),
    /// Supervisor → client: the container's output (a terminal's is all `Stdout`).
    Stdout(Vec<u8>),
    /// Supervisor → client: the container's standard error.
    Stderr(Vec<u8>),
    /// Supervisor → client: the container's command ended (or could not start, with
    /// docker's 125/126/127 and why); the last frame a client gets.
    Exit {
        /// The exit code, docker's way (128 + signal for a signal).
        code: i32,
        /// Why it could not start; empty when it ran.
        message: String,
    },
    /// Client → supervisor: its standard input ended (the container's is closed).
    CloseStdin,
    /// Client → supervisor: the caller's terminal size, for the container's terminal.
    Resize {
        /// Rows.
        rows: u16,
        /// Columns.
        cols: u16,
    },
    /// Client → supervisor: a signal for the container's PID 1 (docker's sig-proxy).
    Signal(i32),
}

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const EXIT: u8 = 3;
const CLOSE_STDIN: u8 = 4;
const RESIZE: u8 = 5;
const SIGNAL: u8 = 6;

/// Larger payloads are refused: a peer that sends one is not speaking this protocol.
const MAX_PAYLOAD: u32 = 1 << 20;

impl Frame {
    /// Writes the frame with one `write_all`.
    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        let (kind, payload): (u8, std::borrow::Cow<[u8]>) = match self {
            Frame::Stdin(b) => (STDIN, b.into()),
            Frame::Stdout(b) => (STDOUT, b.into()),
            Frame::Stderr(b) => (STDERR, b.into()),
            Frame::Exit { code, message } => {
                let mut p = code.to_be_bytes().to_vec();
                p.extend_from_slice(message.as_bytes());
                (EXIT, p.into())
            }
            Frame::CloseStdin => (CLOSE_STDIN, Vec::new().into()),
            Frame::Resize { rows, cols } => {
                let mut p = rows.to_be_bytes().to_vec();
                p.extend_from_slice(&cols.to_be_bytes());
                (RESIZE, p.into())
            }
            Frame::Signal(sig) => (SIGNAL, sig.to_be_bytes().to_vec().into()),
        };
        let mut bytes = Vec::with_capacity(8 + payload.len());
        bytes.extend_from_slice(&[kind, 0, 0, 0]);
        bytes.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&payload);
        w.write_all(&bytes)?;
        w.flush()
    }

    /// The next frame, or None when the peer closed the stream between frames.
    pub fn read_from(r: &mut impl Read) -> io::Result<Option<Frame>> {
        let mut header = [0u8; 8];
        loop {
            match r.read(&mut header[..1]) {
                Ok(0) => return Ok(None),
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        r.read_exact(&mut header[1..])?;
        let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
        if len > MAX_PAYLOAD {
            return Err(bad("an attach frame over 1 MiB"));
        }
        let mut payload = vec![0u8; len as usize];
        r.read_exact(&mut payload)?;
        let int = |p: &[u8]| -> io::Result<i32> {
            Ok(i32::from_be_bytes(
                p.get(..4)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| bad("a short attach frame"))?,
            ))
        };
        Ok(Some(match header[0] {
            STDIN => Frame::Stdin(payload),
            STDOUT => Frame::Stdout(payload),
            STDERR => Frame::Stderr(payload),
            EXIT => Frame::Exit {
                code: int(&payload)?,
                message: String::from_utf8_lossy(&payload[4..]).into_owned(),
            },
            CLOSE_STDIN => Frame::CloseStdin,
            RESIZE => {
                let v = int(&payload)? as u32;
                Frame::Resize {
                    rows: (v >> 16) as u16,
                    cols: v as u16,
                }
            }
            SIGNAL => Frame::Signal(int(&payload)?),
            other => return Err(bad(&format!("unknown attach frame kind {other}"))),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_frame_reads_back_as_written() {
        let frames = [
            Frame::Stdin(b"ls\n".to_vec()),
            Frame::Stdout(b"a\x00b".to_vec()),
            Frame::Stderr(Vec::new()),
            Frame::Exit {
                code: 127,
                message: "exec: \"x\": executable file not found in $PATH".into(),
            },
            Frame::CloseStdin,
            Frame::Resize {
                rows: 50,
                cols: 132,
            },
            Frame::Signal(15),
        ];
        let mut bytes = Vec::new();
        for f in &frames {
            f.write_to(&mut bytes).unwrap();
        }
        // Docker's header for the output kinds.
        assert_eq!(&bytes[..8], &[0, 0, 0, 0, 0, 0, 0, 3]);
        let mut r = &bytes[..];
        for f in &frames {
            assert_eq!(Frame::read_from(&mut r).unwrap().as_ref(), Some(f));
        }
        assert_eq!(Frame::read_from(&mut r).unwrap(), None);
    }

    #[test]
    fn a_truncated_or_oversized_frame_is_an_error() {
        let mut bytes = Vec::new();
        Frame::Stdout(b"hello".to_vec())
            .write_to(&mut bytes)
            .unwrap();
        assert!(Frame::read_from(&mut &bytes[..7]).is_err());
        assert!(Frame::read_from(&mut &bytes[..10]).is_err());
        let huge = [1u8, 0, 0, 0, 0xff, 0, 0, 0];
        assert!(Frame::read_from(&mut &huge[..]).is_err());
    }
}
