//! From Dockerfile text to [`Dockerfile`]: the directives (by the grammar), then the
//! physical-line pass ([`lines`]: comments, blank lines, an instruction's lines joined at
//! its continuations) item by item, each instruction's logical line to [`instruction`]
//! (the grammar again) and its heredoc bodies read after it.

mod flags;
mod instruction;
mod lines;
mod position;

use pest::Parser;

use crate::ast::{Command, Comment, Directive, Dockerfile, Heredoc, Instruction, Span, Warning};
use crate::error::{Diagnostic, Error};
use crate::grammar::{DockerfileGrammar, Rule};
use instruction::{HeredocMarker, Parsed};
use lines::{Item, Lines, Scanner};
use position::{LineIndex, LogicalLine};

const BOM: &str = "\u{feff}";

/// Parses `source`, read from `path` (used only in error messages).
///
/// Accepts what BuildKit's Dockerfile parser accepts and rejects, with a
/// [`Diagnostic`] naming the line and column, what BuildKit rejects.
pub fn parse(path: &str, source: &str) -> Result<Dockerfile, Error> {
    FileParser::new(path, source).run()
}

struct FileParser<'a> {
    path: &'a str,
    src: &'a str,
    lines: LineIndex<'a>,
    offset: usize,
    escape: char,
}

impl<'a> FileParser<'a> {
    fn new(path: &'a str, src: &'a str) -> Self {
        let offset = if src.starts_with(BOM) { BOM.len() } else { 0 };
        FileParser {
            path,
            src,
            lines: LineIndex::new(src, offset),
            offset,
            escape: '\\',
        }
    }

    fn run(mut self) -> Result<Dockerfile, Error> {
        let directives = self.directives()?;
        let mut instructions = Vec::new();
        let mut warnings = Vec::new();
        let mut comments = Vec::new();
        let scanner = Scanner::new(self.src, self.escape);
        while self.offset < self.src.len() {
            let (item, next) = scanner.item(self.offset);
            // An instruction with heredocs moves the offset past their bodies.
            self.offset = next;
            match item {
                Item::Blank => {}
                Item::Comment { start, after } => comments.push(Comment {
                    line: self.lines.position(start).line,
                    text: self.src[start..after]
                        .trim()
                        .trim_start_matches('#')
                        .trim()
                        .to_string(),
                }),
                Item::Instruction(lines) => {
                    instructions.push(self.instruction(lines, &mut warnings)?);
                }
            }
        }
        self.check_stages(&instructions)?;
        Ok(Dockerfile {
            directives,
            escape: self.escape,
            instructions,
            comments,
            warnings,
        })
    }

    /// Reads parser directives: only at the very top, each name once; the first line that
    /// is not a known directive ends them, as in BuildKit.
    fn directives(&mut self) -> Result<Vec<Directive>, Error> {
        let mut found: Vec<Directive> = Vec::new();
        loop {
            let rest = &self.src[self.offset..];
            // One line: pest indexes the lines of all it is given.
            let line = &rest[..rest.find('\n').map_or(rest.len(), |i| i + 1)];
            let Some(pair) = DockerfileGrammar::parse(Rule::directive_line, line)
                .ok()
                .and_then(|mut p| p.next())
            else {
                break;
            };
            let mut inner = pair.clone().into_inner();
            let name = inner
                .next()
                .map(|p| p.as_str().to_ascii_lowercase())
                .unwrap_or_default();
            let value = inner
                .next()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default();
            if !matches!(name.as_str(), "syntax" | "escape" | "check") {
                break;
            }
            let at = self.offset;
            if found.iter().any(|d| d.name == name) {
                return Err(
                    self.error_at(at, format!("only one {name} parser directive can be used"))
                );
            }
            match name.as_str() {
                "escape" => match value.as_str() {
                    "\\" => self.escape = '\\',
                    "`" => self.escape = '`',
                    _ => {
                        return Err(self.error_at(
                            at,
                            format!("invalid escape token '{value}' does not match ` or \\"),
                        ))
                    }
                },
                "check" => {
                    if let Err(message) = check_directive(&value) {
                        return Err(self.error_at(at, message));
                    }
                }
                _ => {}
            }
            found.push(Directive {
                name,
                value,
                line: self.lines.position(at).line,
            });
            self.offset += pair.as_span().end();
        }
        Ok(found)
    }

    fn instruction(
        &mut self,
        lines: Lines,
        warnings: &mut Vec<Warning>,
    ) -> Result<Instruction, Error> {
        let Lines {
            start,
            after,
            segments,
            empty_continuation,
        } = lines;
        let mut logical = LogicalLine::default();
        for (from, to) in segments {
            logical.push(&self.src[from..to], from);
        }
        let (text, text_start) = logical.trimmed();
        // The span starts at the keyword, past any indentation.
        let start = if text.is_empty() {
            start
        } else {
            logical.source_offset(text_start)
        };
        let parsed = instruction::parse_logical(text, self.escape).map_err(|(at, message)| {
            self.error_at(logical.source_offset(text_start + at), message)
        })?;
        // The instruction's own text ends with its last segment, before the line break.
        let mut end = logical.source_end().max(start);
        let Parsed {
            command,
            flags,
            heredocs,
        } = parsed;
        let heredocs = if heredocs.is_empty() {
            Vec::new()
        } else {
            self.offset = after;
            self.heredoc_bodies(start, &heredocs, &mut end)?
        };
        let span = Span {
            start: self.lines.position(start),
            end: self.lines.position(end.max(start + 1) - 1),
        };
        let original = self.src[start..end].to_string();
        if empty_continuation {
            warnings.push(Warning {
                span,
                message: "empty continuation line: BuildKit will make these errors; remove the blank line or end the instruction before it".into(),
            });
        }
        // An ONBUILD trigger's heredocs belong to the trigger.
        let (command, heredocs) = match command {
            Command::Onbuild(mut trigger) => {
                trigger.span = span;
                trigger.heredocs = heredocs;
                (Command::Onbuild(trigger), Vec::new())
            }
            command => (command, heredocs),
        };
        Ok(Instruction {
            span,
            original,
            flags,
            heredocs,
            command,
        })
    }

    /// Reads each heredoc's body, in order, from the lines after the instruction; a body
    /// ends at a line that is exactly the delimiter (after leading tabs with `<<-`).
    fn heredoc_bodies(
        &mut self,
        start: usize,
        markers: &[HeredocMarker],
        end: &mut usize,
    ) -> Result<Vec<Heredoc>, Error> {
        let mut docs = Vec::with_capacity(markers.len());
        for marker in markers {
            let mut content = String::new();
            let mut terminated = false;
            while self.offset < self.src.len() {
                let rest = &self.src[self.offset..];
                let len = rest.find('\n').map_or(rest.len(), |i| i + 1);
                let line = &rest[..len];
                self.offset += len;
                let bare = line.strip_suffix('\n').unwrap_or(line);
                let bare = bare.strip_suffix('\r').unwrap_or(bare);
                let candidate = if marker.chomp {
                    bare.trim_start_matches('\t')
                } else {
                    bare
                };
                if candidate == marker.name {
                    *end = self.offset - (line.len() - bare.len());
                    terminated = true;
                    break;
                }
                if marker.chomp {
                    content.push_str(line.trim_start_matches('\t'));
                } else {
                    content.push_str(line);
                }
            }
            if !terminated {
                return Err(self.error_at(
                    start,
                    format!(
                        "unterminated heredoc: no line reads `{}` to end it",
                        marker.name
                    ),
                ));
            }
            docs.push(Heredoc {
                name: marker.name.clone(),
                content,
                expand: marker.expand,
                chomp: marker.chomp,
                fd: marker.fd,
            });
        }
        Ok(docs)
    }

    /// BuildKit needs a build stage before any instruction but ARG.
    fn check_stages(&self, instructions: &[Instruction]) -> Result<(), Error> {
        for instr in instructions {
            match instr.command {
                Command::From(_) => return Ok(()),
                Command::Arg(_) => {}
                _ => {
                    return Err(self.error_at_position(
                        instr.span.start,
                        format!(
                            "{} before any FROM: every instruction but ARG belongs to a build stage, which FROM starts",
                            instr.command.keyword().to_uppercase()
                        ),
                    ))
                }
            }
        }
        let message = "no FROM instruction: a Dockerfile needs at least one build stage";
        let pos = instructions
            .last()
            .map_or_else(|| self.lines.position(self.offset), |i| i.span.start);
        Err(self.error_at_position(pos, message.into()))
    }

    fn error_at(&self, offset: usize, message: String) -> Error {
        self.error_at_position(self.lines.position(offset), message)
    }

    fn error_at_position(&self, pos: crate::ast::Position, message: String) -> Error {
        Error::Syntax(Box::new(Diagnostic {
            path: self.path.to_string(),
            line: pos.line,
            column: pos.column,
            message,
            source_line: self.lines.line_text(pos.line).to_string(),
        }))
    }
}

/// `# check=skip=Rule1,Rule2;error=true;experimental=Rule3`: BuildKit refuses unknown keys
/// and bad values.
fn check_directive(value: &str) -> Result<(), String> {
    for part in value.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, val) = part.split_once('=').unwrap_or((part, ""));
        match key.trim().to_ascii_lowercase().as_str() {
            "skip" | "experimental" => {}
            "error" => {
                if !matches!(val.trim().to_ascii_lowercase().as_str(), "true" | "false") {
                    return Err(format!(
                        "check directive: error must be true or false, not {val:?}"
                    ));
                }
            }
            other => {
                return Err(format!(
                    "check directive: unknown option {other:?} (expected skip=, error= or experimental=)"
                ))
            }
        }
    }
    Ok(())
}
