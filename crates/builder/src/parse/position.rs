//! Byte offsets to line and column, and the map from a joined logical line back to the
//! physical text it came from.

use crate::ast::Position;

/// Line starts of a source text, for offset → (line, column).
pub(super) struct LineIndex<'a> {
    src: &'a str,
    starts: Vec<usize>,
    /// Where line 1's text begins (after a byte-order mark).
    first: usize,
}

impl<'a> LineIndex<'a> {
    pub(super) fn new(src: &'a str, first: usize) -> Self {
        let mut starts = vec![0];
        starts.extend(src.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { src, starts, first }
    }

    fn line_start(&self, line: usize) -> usize {
        if line == 1 {
            self.first
        } else {
            self.starts.get(line - 1).copied().unwrap_or(self.src.len())
        }
    }

    /// Columns count characters, so a caret lines up under non-ASCII text.
    pub(super) fn position(&self, offset: usize) -> Position {
        let offset = offset.min(self.src.len());
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_start(line).min(offset);
        let column = self
            .src
            .get(start..offset)
            .map_or(offset - start, |t| t.chars().count())
            + 1;
        Position { line, column }
    }

    pub(super) fn line_text(&self, line: usize) -> &'a str {
        let start = self.line_start(line);
        let end = self
            .starts
            .get(line)
            .map_or(self.src.len(), |&e| e - 1)
            .max(start);
        let text = &self.src[start..end];
        text.strip_suffix('\r').unwrap_or(text)
    }
}

/// The text of one instruction with its continuations removed, remembering where each
/// piece came from so errors point into the file.
#[derive(Default)]
pub(super) struct LogicalLine {
    text: String,
    /// (offset in `text`, offset in the source) of each piece.
    pieces: Vec<(usize, usize)>,
    source_end: usize,
}

impl LogicalLine {
    pub(super) fn push(&mut self, piece: &str, source_offset: usize) {
        self.pieces.push((self.text.len(), source_offset));
        self.text.push_str(piece);
        self.source_end = source_offset + piece.len();
    }

    /// The text without surrounding white space, and where it starts in the full text.
    pub(super) fn trimmed(&self) -> (&str, usize) {
        let trimmed = self.text.trim();
        let start = self.text.len() - self.text.trim_start().len();
        (trimmed, start)
    }

    pub(super) fn source_offset(&self, at: usize) -> usize {
        let i = self.pieces.partition_point(|&(t, _)| t <= at).max(1) - 1;
        let (t, s) = self.pieces.get(i).copied().unwrap_or((0, 0));
        s + (at - t)
    }

    pub(super) fn source_end(&self) -> usize {
        self.source_end
    }
}
