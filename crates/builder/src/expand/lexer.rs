//! BuildKit's shell lexer: `$VAR` and `${VAR...}` expansion with shell quoting, as the
//! Dockerfile frontend applies it to instruction arguments (not to RUN's shell text).

use super::Variables;

/// How a text is read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// An instruction argument: quotes group and are removed, the escape character
    /// escapes the next character.
    Word,
    /// A heredoc body: quotes are literal; `\` escapes only `$`, `\` and a backtick, as a
    /// POSIX shell reads an unquoted here-document.
    Heredoc,
}

/// Expands one word: quotes removed, nothing split (ENV values, WORKDIR, COPY paths, ...).
pub fn word(text: &str, escape: char, vars: &dyn Variables) -> Result<String, String> {
    let mut lexer = Lexer::new(text, escape, vars, Mode::Word, false);
    let mut words = lexer.run()?;
    Ok(words.pop().unwrap_or_default())
}

/// Expands and splits on unquoted white space, including white space that an unquoted
/// variable brings in (EXPOSE `$PORTS`).
pub fn words(text: &str, escape: char, vars: &dyn Variables) -> Result<Vec<String>, String> {
    Lexer::new(text, escape, vars, Mode::Word, true).run()
}

/// Expands a heredoc body whose delimiter was not quoted.
pub fn heredoc(text: &str, vars: &dyn Variables) -> Result<String, String> {
    let mut lexer = Lexer::new(text, '\\', vars, Mode::Heredoc, false);
    Ok(lexer.run()?.pop().unwrap_or_default())
}

/// Accumulates output, splitting into words when asked.
struct Output {
    split: bool,
    words: Vec<String>,
    current: String,
    /// An empty quoted string (`""`) still makes a word.
    started: bool,
}

impl Output {
    fn push(&mut self, c: char) {
        self.current.push(c);
        self.started = true;
    }

    fn push_str(&mut self, s: &str) {
        self.current.push_str(s);
        self.started = true;
    }

    /// Text from an unquoted expansion: split on white space when splitting.
    fn push_unquoted(&mut self, s: &str) {
        if !self.split {
            return self.push_str(s);
        }
        for (i, part) in s.split(char::is_whitespace).enumerate() {
            if i > 0 {
                self.finish();
            }
            if !part.is_empty() {
                self.push_str(part);
            }
        }
    }

    fn finish(&mut self) {
        if self.started {
            self.words.push(std::mem::take(&mut self.current));
            self.started = false;
        }
    }
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    vars: &'a dyn Variables,
    mode: Mode,
    split: bool,
    /// How many `${` enclose the current position; bounded so that no input can exhaust
    /// the stack.
    depth: usize,
}

/// Deeper than any real Dockerfile nests `${...}`; refused past that.
const MAX_DEPTH: usize = 64;

/// The longest word an expansion may make: far beyond any real argument, and a bound on
/// what `ENV A2=$A1$A1` chains (which double at each line) can take.
const MAX_WORD: usize = 1 << 20;

fn too_long() -> String {
    format!("a variable expands to more than {MAX_WORD} bytes (ENV or ARG values that repeat each other?)")
}

/// Refuses a word past [`MAX_WORD`].
fn bounded(text: &str) -> Result<(), String> {
    if text.len() > MAX_WORD {
        return Err(too_long());
    }
    Ok(())
}

impl<'a> Lexer<'a> {
    fn new(text: &str, escape: char, vars: &'a dyn Variables, mode: Mode, split: bool) -> Self {
        Lexer {
            chars: text.chars().collect(),
            pos: 0,
            escape,
            vars,
            mode,
            split,
            depth: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.pos += usize::from(c.is_some());
        c
    }

    fn run(&mut self) -> Result<Vec<String>, String> {
        let mut out = Output {
            split: self.split,
            words: Vec::new(),
            current: String::new(),
            started: false,
        };
        self.process(&mut out, None)?;
        out.finish();
        if !self.split && out.words.is_empty() {
            out.words.push(String::new());
        }
        Ok(out.words)
    }

    /// Reads until `stop` (unquoted) or the end; `stop` is consumed.
    fn process(&mut self, out: &mut Output, stop: Option<char>) -> Result<bool, String> {
        while let Some(c) = self.next() {
            if Some(c) == stop {
                return Ok(true);
            }
            match (self.mode, c) {
                (Mode::Heredoc, '\\') => match self.peek() {
                    Some(n @ ('$' | '\\' | '`')) => {
                        self.pos += 1;
                        out.push(n);
                    }
                    _ => out.push('\\'),
                },
                (Mode::Heredoc, '$') => {
                    let value = self.dollar()?;
                    out.push_str(&value);
                    bounded(&out.current)?;
                }
                (Mode::Heredoc, c) => out.push(c),
                (Mode::Word, c) if c == self.escape => {
                    // An escape at the very end is dropped, as BuildKit does.
                    if let Some(n) = self.next() {
                        out.push(n);
                    }
                }
                (Mode::Word, '\'') => {
                    out.started = true;
                    self.single_quoted(out)?;
                }
                (Mode::Word, '"') => {
                    out.started = true;
                    self.double_quoted(out)?;
                }
                (Mode::Word, '$') => {
                    let value = self.dollar()?;
                    out.push_unquoted(&value);
                    bounded(&out.current)?;
                }
                (Mode::Word, c) if self.split && c.is_whitespace() => out.finish(),
                (Mode::Word, c) => out.push(c),
            }
        }
        Ok(false)
    }

    fn single_quoted(&mut self, out: &mut Output) -> Result<(), String> {
        while let Some(c) = self.next() {
            if c == '\'' {
                return Ok(());
            }
            out.push(c);
        }
        Err("unexpected end of statement while looking for matching single-quote".into())
    }

    fn double_quoted(&mut self, out: &mut Output) -> Result<(), String> {
        while let Some(c) = self.next() {
            match c {
                '"' => return Ok(()),
                '$' => {
                    let value = self.dollar()?;
                    out.push_str(&value);
                    bounded(&out.current)?;
                }
                c if c == self.escape => match self.peek() {
                    // Only these can be escaped inside double quotes; other escapes stay.
                    Some(n) if n == '"' || n == '$' || n == self.escape => {
                        self.pos += 1;
                        out.push(n);
                    }
                    Some(_) => out.push(c),
                    None => {}
                },
                c => out.push(c),
            }
        }
        Err("unexpected end of statement while looking for matching double-quote".into())
    }

    /// After a `$`: a name, `${...}`, or a lone `$` kept as is.
    fn dollar(&mut self) -> Result<String, String> {
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(self.vars.lookup(&name).unwrap_or_default().to_string());
        }
        self.pos += 1;
        if self.depth == MAX_DEPTH {
            return Err(format!(
                "variable substitutions nested more than {MAX_DEPTH} deep"
            ));
        }
        self.depth += 1;
        let result = self.braced();
        self.depth -= 1;
        result
    }

    /// After `${`: the name, then `}` or a modifier.
    fn braced(&mut self) -> Result<String, String> {
        let name = self.name();
        if name.is_empty() {
            return Err("bad substitution: ${} needs a variable name".into());
        }
        let value = self.vars.lookup(&name).map(str::to_string);
        let Some(op) = self.next() else {
            return Err(format!("syntax error: missing '}}' in ${{{name}"));
        };
        match op {
            '}' => Ok(value.unwrap_or_default()),
            ':' => {
                let Some(op2 @ ('-' | '+' | '?')) = self.next() else {
                    return Err(format!("unsupported modifier in ${{{name}:...}}: use :-, :+ or :?"));
                };
                let word = self.modifier_word(&name)?;
                let usable = value.as_deref().filter(|v| !v.is_empty());
                self.apply_default(&name, op2, usable, word, "is not allowed to be unset or empty")
            }
            '-' | '+' | '?' => {
                let word = self.modifier_word(&name)?;
                self.apply_default(&name, op, value.as_deref(), word, "is not allowed to be unset")
            }
            '#' | '%' => {
                let longest = self.peek() == Some(op);
                self.pos += usize::from(longest);
                let pattern: Vec<char> = self.modifier_word(&name)?.chars().collect();
                let text: Vec<char> = value.unwrap_or_default().chars().collect();
                Ok(if op == '#' { trim_prefix(&text, &pattern, longest) } else { trim_suffix(&text, &pattern, longest) })
            }
            '/' => {
                let all = self.peek() == Some('/');
                self.pos += usize::from(all);
                let mut pattern = Output { split: false, words: Vec::new(), current: String::new(), started: false };
                let ended_at_slash = self.process(&mut pattern, Some('/'))?;
                let replacement = if ended_at_slash {
                    self.modifier_word(&name)?
                } else {
                    // `${VAR/p}` with no `/r}`: the `}` was read as part of the pattern.
                    if pattern.current.pop() != Some('}') {
                        return Err(format!("syntax error: missing '}}' in ${{{name}/...}}"));
                    }
                    String::new()
                };
                let pattern: Vec<char> = pattern.current.chars().collect();
                let text: Vec<char> = value.unwrap_or_default().chars().collect();
                replace(&text, &pattern, &replacement, all)
            }
            other => Err(format!(
                "unsupported modifier ({other}) in substitution ${{{name}{other}...}}: kiln supports -, +, ?, #, %, / with or without :"
            )),
        }
    }

    /// The word after a modifier, up to the closing brace, itself expanded.
    fn modifier_word(&mut self, name: &str) -> Result<String, String> {
        let mut word = Output {
            split: false,
            words: Vec::new(),
            current: String::new(),
            started: false,
        };
        if !self.process(&mut word, Some('}'))? {
            return Err(format!("syntax error: missing '}}' in ${{{name}...}}"));
        }
        Ok(word.current)
    }

    fn apply_default(
        &self,
        name: &str,
        op: char,
        value: Option<&str>,
        word: String,
        unset: &str,
    ) -> Result<String, String> {
        match op {
            '-' => Ok(value.map_or(word, str::to_string)),
            '+' => Ok(if value.is_some() { word } else { String::new() }),
            _ => match value {
                Some(v) => Ok(v.to_string()),
                None if word.is_empty() => Err(format!("{name}: {unset}")),
                None => Err(format!("{name}: {word}")),
            },
        }
    }

    /// A variable name: letters, digits and `_`; or a run of digits; or one special
    /// parameter character.
    fn name(&mut self) -> String {
        let mut name = String::new();
        match self.peek() {
            Some(c) if c.is_ascii_digit() => {
                while let Some(c) = self.peek().filter(char::is_ascii_digit) {
                    name.push(c);
                    self.pos += 1;
                }
            }
            Some(c @ ('@' | '*' | '#' | '?' | '-' | '$' | '!')) => {
                self.pos += 1;
                name.push(c);
            }
            _ => {
                while let Some(c) = self.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
                    name.push(c);
                    self.pos += 1;
                }
            }
        }
        name
    }
}

fn trim_prefix(text: &[char], pattern: &[char], longest: bool) -> String {
    let mut ends: Vec<usize> = (0..=text.len()).collect();
    if longest {
        ends.reverse();
    }
    match ends.into_iter().find(|&e| glob(pattern, &text[..e])) {
        Some(e) => text[e..].iter().collect(),
        None => text.iter().collect(),
    }
}

fn trim_suffix(text: &[char], pattern: &[char], longest: bool) -> String {
    let mut starts: Vec<usize> = (0..=text.len()).rev().collect();
    if longest {
        starts.reverse();
    }
    match starts.into_iter().find(|&s| glob(pattern, &text[s..])) {
        Some(s) => text[..s].iter().collect(),
        None => text.iter().collect(),
    }
}

/// Replaces the longest match at the leftmost position (every one with `all`).
fn replace(
    text: &[char],
    pattern: &[char],
    replacement: &str,
    all: bool,
) -> Result<String, String> {
    let mut out = String::new();
    let mut i = 0;
    let mut replaced = false;
    while i <= text.len() {
        let found = if replaced && !all || pattern.is_empty() {
            None
        } else {
            (i..=text.len()).rev().find(|&e| glob(pattern, &text[i..e]))
        };
        match found {
            Some(e) if e > i => {
                out.push_str(replacement);
                bounded(&out)?;
                i = e;
                replaced = true;
            }
            _ => {
                if let Some(c) = text.get(i) {
                    out.push(*c);
                }
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Shell pattern matching of the whole `text`: `*`, `?`, `[...]` (with `!`/`^` and ranges),
/// `\` to take the next character literally.
fn glob(pattern: &[char], text: &[char]) -> bool {
    match pattern.first() {
        None => text.is_empty(),
        Some('*') => (0..=text.len()).any(|i| glob(&pattern[1..], &text[i..])),
        Some('?') => !text.is_empty() && glob(&pattern[1..], &text[1..]),
        Some('[') => match (class(&pattern[1..]), text.first()) {
            (Some((matches, len)), Some(&c)) => matches(c) && glob(&pattern[1 + len..], &text[1..]),
            (None, Some(&c)) => c == '[' && glob(&pattern[1..], &text[1..]),
            (_, None) => false,
        },
        Some('\\') if pattern.len() > 1 => {
            text.first() == Some(&pattern[1]) && glob(&pattern[2..], &text[1..])
        }
        Some(p) => text.first() == Some(p) && glob(&pattern[1..], &text[1..]),
    }
}

/// A bracket expression after its `[`: a matcher and how many pattern characters it used
/// (through the closing `]`), or None when there is no closing bracket.
#[allow(clippy::type_complexity)]
fn class(p: &[char]) -> Option<(Box<dyn Fn(char) -> bool + '_>, usize)> {
    let negate = matches!(p.first(), Some('!' | '^'));
    let body_start = usize::from(negate);
    // A `]` right after the opening (and negation) is a member, not the end.
    let close = p.iter().skip(body_start + 1).position(|&c| c == ']')? + body_start + 1;
    let body = &p[body_start..close];
    let matcher = move |c: char| {
        let mut i = 0;
        let mut hit = false;
        while i < body.len() {
            if i + 2 < body.len() && body[i + 1] == '-' {
                hit |= body[i] <= c && c <= body[i + 2];
                i += 3;
            } else {
                hit |= body[i] == c;
                i += 1;
            }
        }
        hit != negate
    };
    Some((Box::new(matcher), close + 1))
}
