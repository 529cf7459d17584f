//! A container's log in docker's `json-file` format: one JSON object a line,
//! `{"log":"…\n","stream":"stdout","time":"RFC 3339 with nanoseconds"}`, so tools that
//! read docker's logs read kiln's.

use std::io::{BufRead, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line of output, as the log keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogLine {
    /// The line with its newline (the last line of a stream may lack one).
    pub log: String,
    pub stream: Stream,
    pub time: String,
}

impl LogLine {
    pub fn time(&self) -> Option<std::time::SystemTime> {
        humantime::parse_rfc3339(&self.time).ok()
    }
}

/// Appends lines to a container's log.
pub struct LogWriter {
    file: std::fs::File,
}

impl LogWriter {
    pub fn open(path: &Path) -> Result<LogWriter, Error> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::Io {
                op: "open",
                path: path.to_path_buf(),
                source: e,
            })?;
        Ok(LogWriter { file })
    }

    /// Writes one line, whole (one `write`: a reader never sees half of it).
    pub fn write(&mut self, stream: Stream, line: &str) -> std::io::Result<()> {
        let entry = LogLine {
            log: line.to_string(),
            stream,
            time: humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string(),
        };
        let mut bytes = serde_json::to_vec(&entry)?;
        bytes.push(b'\n');
        self.file.write_all(&bytes)
    }
}

/// The lines of the log at `path` from byte `offset`, and the offset after the last whole
/// line (where to read on from, for `logs -f`).
pub fn read_from(path: &Path, offset: u64) -> Result<(Vec<LogLine>, u64), Error> {
    use std::io::Seek;
    let io = |source| Error::Io {
        op: "read",
        path: path.to_path_buf(),
        source,
    };
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), offset)),
        Err(e) => return Err(io(e)),
    };
    file.seek(std::io::SeekFrom::Start(offset)).map_err(io)?;
    let mut reader = std::io::BufReader::new(file);
    let mut lines = Vec::new();
    let mut at = offset;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(io)?;
        if n == 0 || buf.last() != Some(&b'\n') {
            break;
        }
        at += n as u64;
        if let Ok(line) = serde_json::from_slice::<LogLine>(&buf) {
            lines.push(line);
        }
    }
    Ok((lines, at))
}
