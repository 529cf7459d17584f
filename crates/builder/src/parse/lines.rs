//! The physical-line pass, written by hand: comment lines, blank lines, and the physical
//! lines of one instruction with the pieces between its line continuations. It follows
//! BuildKit's rules as the grammar's `instruction_*` rules follow its logical-line rules;
//! it was a pest grammar too, until the parse benchmark showed that matching every
//! character of every line against four one-character strings, and the line index pest
//! builds over its input at each call, were a third of the parse.
//!
//! The rules, as BuildKit applies them:
//! - A line whose first non-blank character is `#` is a comment (`hs` is space, tab,
//!   form feed and vertical tab; a line ends at `\n` or `\r\n`, a lone `\r` is text).
//! - A line of blanks only is blank.
//! - Any other line starts an instruction. An escape character followed by blanks and the
//!   end of the line continues it on the next line; comment lines and empty lines after a
//!   continuation are skipped (an empty one is reported). A run of two or more escape
//!   characters is text: `\\` at the end of a line is an escaped backslash. The first
//!   character of an instruction is always text.

/// What one item of the physical-line pass is.
pub(super) enum Item {
    Blank,
    /// A comment line: where it starts (with its indentation) and where the next starts.
    Comment {
        start: usize,
        after: usize,
    },
    Instruction(Lines),
}

/// The physical lines of one instruction.
pub(super) struct Lines {
    /// Where the instruction's first line starts (with its indentation).
    pub(super) start: usize,
    /// Just after its last line's line break.
    pub(super) after: usize,
    /// The text between continuations: (start, end) in the source, possibly empty.
    pub(super) segments: Vec<(usize, usize)>,
    /// Whether an empty line followed a continuation.
    pub(super) empty_continuation: bool,
}

/// Reads items from a source text with one escape character.
pub(super) struct Scanner<'a> {
    src: &'a [u8],
    escape: u8,
}

fn is_hs(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\x0C' | b'\x0B')
}

impl<'a> Scanner<'a> {
    pub(super) fn new(src: &'a str, escape: char) -> Self {
        Scanner {
            src: src.as_bytes(),
            escape: escape as u8,
        }
    }

    /// Past the blanks from `at`.
    fn skip_hs(&self, mut at: usize) -> usize {
        while at < self.src.len() && is_hs(self.src[at]) {
            at += 1;
        }
        at
    }

    /// The length of the line break at `at` (`\n` or `\r\n`), if there is one.
    fn eol(&self, at: usize) -> Option<usize> {
        match self.src.get(at..) {
            Some([b'\n', ..]) => Some(1),
            Some([b'\r', b'\n', ..]) => Some(2),
            _ => None,
        }
    }

    /// The end of the line break (or of the text) at `at`: a line end.
    fn line_end(&self, at: usize) -> Option<usize> {
        if at >= self.src.len() {
            return Some(at);
        }
        self.eol(at).map(|n| at + n)
    }

    /// Where the line from `at` ends, before its line break.
    fn text_end(&self, at: usize) -> usize {
        let mut end = self.src[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(self.src.len(), |i| at + i);
        if end > at && self.src[end - 1] == b'\r' && end < self.src.len() {
            end -= 1;
        }
        end
    }

    /// After a continuation at `at` (the escape character, blanks, a line end), if there
    /// is one.
    fn continuation(&self, at: usize) -> Option<usize> {
        if self.src.get(at) != Some(&self.escape) {
            return None;
        }
        self.line_end(self.skip_hs(at + 1))
    }

    /// A comment line from `at` (blanks, `#`, text, a line end): where the next line
    /// starts.
    fn comment(&self, at: usize) -> Option<usize> {
        let hash = self.skip_hs(at);
        if self.src.get(hash) != Some(&b'#') {
            return None;
        }
        let end = self.text_end(hash);
        Some(self.line_end(end).expect("a line ends where its text does"))
    }

    /// An empty line from `at`: blanks and a line break, or blanks to the end.
    fn empty(&self, at: usize) -> Option<usize> {
        let after = self.skip_hs(at);
        match self.eol(after) {
            Some(n) => Some(after + n),
            None if after == self.src.len() && after > at => Some(after),
            None => None,
        }
    }

    /// The end of the text from `at` up to a line break or a continuation.
    fn segment_text(&self, mut at: usize) -> usize {
        let start = at;
        loop {
            at += self.src[at..]
                .iter()
                .position(|&b| matches!(b, b'\n' | b'\\' | b'`'))
                .unwrap_or(self.src.len() - at);
            match self.src.get(at) {
                None => return at,
                Some(b'\n') => {
                    // `\r\n` ends the line; its `\r` is not text.
                    return if at > start && self.src[at - 1] == b'\r' {
                        at - 1
                    } else {
                        at
                    };
                }
                Some(&b) if b == self.escape && self.src.get(at + 1) == Some(&self.escape) => {
                    while self.src.get(at) == Some(&self.escape) {
                        at += 1;
                    }
                }
                Some(_) if self.continuation(at).is_some() => return at,
                Some(_) => at += 1,
            }
        }
    }

    /// Skips the comment and empty lines after a continuation.
    fn skipped_lines(&self, mut at: usize, empty_continuation: &mut bool) -> usize {
        loop {
            if let Some(next) = self.comment(at) {
                at = next;
            } else if let Some(next) = self.empty(at) {
                *empty_continuation = true;
                at = next;
            } else {
                return at;
            }
        }
    }

    /// The item at `at` (which is before the end of the text), and where the next starts.
    pub(super) fn item(&self, at: usize) -> (Item, usize) {
        if let Some(after) = self.comment(at) {
            return (Item::Comment { start: at, after }, after);
        }
        let first = self.skip_hs(at);
        let mut segments = Vec::new();
        let mut empty_continuation = false;
        let mut pos = if let Some(next) = self.continuation(first) {
            let start = self.skipped_lines(next, &mut empty_continuation);
            let end = self.segment_text(start);
            segments.push((start, end));
            end
        } else if self.line_end(first).is_none() {
            // The first character is text whatever it is (`first` starts one: the
            // source is UTF-8 and everything skipped so far is ASCII).
            let ch = match self.src[first] {
                0x00..=0x7F => 1,
                0xC0..=0xDF => 2,
                0xE0..=0xEF => 3,
                _ => 4,
            };
            let end = self.segment_text(first + ch);
            segments.push((first, end));
            end
        } else {
            return (Item::Blank, self.empty(at).expect("a line of blanks"));
        };
        // A continuation takes at least its escape character, so this ends.
        while let Some(next) = self.continuation(pos) {
            let start = self.skipped_lines(next, &mut empty_continuation);
            pos = self.segment_text(start);
            segments.push((start, pos));
        }
        let after = self.line_end(pos).expect("a segment ends at a line end");
        (
            Item::Instruction(Lines {
                start: at,
                after,
                segments,
                empty_continuation,
            }),
            after,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every item of `src` as text: `#` comments, `_` blank lines, and instructions as
    /// their segments joined by `|` (with `!` when an empty line followed a continuation).
    fn items(src: &str, escape: char) -> Vec<String> {
        let scanner = Scanner::new(src, escape);
        let mut at = 0;
        let mut out = Vec::new();
        while at < src.len() {
            let (item, next) = scanner.item(at);
            assert!(next > at, "no progress at {at} in {src:?}");
            out.push(match item {
                Item::Blank => "_".to_string(),
                Item::Comment { start, after } => format!("#{}", &src[start..after]),
                Item::Instruction(l) => {
                    assert_eq!((l.start, l.after), (at, next));
                    let text: Vec<&str> = l.segments.iter().map(|&(a, b)| &src[a..b]).collect();
                    let mark = if l.empty_continuation { "!" } else { "" };
                    format!("{}{mark}", text.join("|"))
                }
            });
            at = next;
        }
        out
    }

    #[test]
    fn continuations_join_lines_skipping_comments_and_flagging_empty_lines() {
        assert_eq!(
            items("RUN a \\\n  # note\n\n  b\nCMD c\n", '\\'),
            ["RUN a |  b!", "CMD c"]
        );
        assert_eq!(
            items("  # top\n \t\nRUN x", '\\'),
            ["#  # top\n", "_", "RUN x"]
        );
    }

    #[test]
    fn two_escape_characters_at_a_line_end_are_text_not_a_continuation() {
        assert_eq!(items("RUN a \\\\\nCMD b", '\\'), ["RUN a \\\\", "CMD b"]);
        // The instruction's first character is text whatever it is.
        assert_eq!(items("\\\\\nRUN b", '\\'), ["\\|RUN b"]);
    }

    #[test]
    fn crlf_ends_a_line_and_a_lone_carriage_return_is_text() {
        assert_eq!(
            items("RUN a \\\r\nb\r\nCMD c\rd\r\n", '\\'),
            ["RUN a |b", "CMD c\rd"]
        );
    }

    #[test]
    fn with_the_backtick_escape_a_backslash_is_text() {
        assert_eq!(
            items("RUN dir c:\\ `\n  d:\\\nCMD x `\n", '`'),
            ["RUN dir c:\\ |  d:\\", "CMD x |"]
        );
    }

    #[test]
    fn an_instruction_may_open_with_a_continuation() {
        assert_eq!(items("\\\nRUN a", '\\'), ["RUN a"]);
        assert_eq!(items("  日本 \\", '\\'), ["日本 |"]);
    }
}
