//! A container's log in docker's `json-file` format: one JSON object a line,
//! `{"log":"…\n","stream":"stdout","time":"RFC 3339 with nanoseconds"}`, so tools that
//! read docker's logs read kiln's; rotated as docker's `max-size`/`max-file` rotate it
//! (`<log>.1` the newest of the older files).

use std::io::{BufRead, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Which stream a line came from (docker's json-file `stream`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Standard output (and a terminal's output).
    Stdout,
    /// Standard error.
    Stderr,
}

/// One line of output, as the log keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogLine {
    /// The line with its newline (the last line of a stream may lack one).
    pub log: String,
    /// Its stream.
    pub stream: Stream,
    /// When it was read, RFC 3339 with nanoseconds.
    pub time: String,
}

impl LogLine {
    /// [`LogLine::time`] read, for `--since`/`--until`; None when it does not read.
    pub fn time(&self) -> Option<std::time::SystemTime> {
        humantime::parse_rfc3339(&self.time).ok()
    }
}

/// Appends lines to a container's log.
pub struct LogWriter {
    file: std::fs::File,
    path: std::path::PathBuf,
    size: u64,
    /// docker's `max-size` (None: it grows) and `max-file` (files kept, the current one
    /// included).
    max_size: Option<u64>,
    max_files: u32,
}

fn open_append(path: &Path) -> Result<std::fs::File, Error> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::Io {
            op: "open",
            path: path.to_path_buf(),
            source: e,
        })
}

/// The log's rotated files, oldest first.
pub fn rotated(path: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for n in 1.. {
        let p = std::path::PathBuf::from(format!("{}.{n}", path.display()));
        if !p.exists() {
            break;
        }
        out.push(p);
    }
    out.reverse();
    out
}

impl LogWriter {
    /// Opens the log at `path` for appending; with `max_size`, the file is rotated once it
    /// passes that size, keeping `max_files` files in all.
    pub fn open(path: &Path, max_size: Option<u64>, max_files: u32) -> Result<LogWriter, Error> {
        let file = open_append(path)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(LogWriter {
            file,
            path: path.to_path_buf(),
            size,
            max_size,
            max_files: max_files.max(1),
        })
    }

    /// Past `max-size`: `log.N-1` → `log.N`, …, `log` → `log.1` (the oldest beyond
    /// `max-file` dropped), then a fresh `log`.
    fn rotate(&mut self) -> std::io::Result<()> {
        let name = |n: u32| format!("{}.{n}", self.path.display());
        if self.max_files > 1 {
            let _ = std::fs::remove_file(name(self.max_files - 1));
            for n in (1..self.max_files - 1).rev() {
                let _ = std::fs::rename(name(n), name(n + 1));
            }
            std::fs::rename(&self.path, name(1))?;
        } else {
            std::fs::remove_file(&self.path)?;
        }
        self.file = open_append(&self.path).map_err(std::io::Error::other)?;
        self.size = 0;
        Ok(())
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
        if self
            .max_size
            .is_some_and(|max| self.size > 0 && self.size + bytes.len() as u64 > max)
        {
            self.rotate()?;
        }
        self.file.write_all(&bytes)?;
        self.size += bytes.len() as u64;
        Ok(())
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
    // Shorter than where we were: rotated since; the new file is read from its start.
    let offset = if file.metadata().map_err(io)?.len() < offset {
        0
    } else {
        offset
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
