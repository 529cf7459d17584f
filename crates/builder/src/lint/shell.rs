//! A reader of the shell text of RUN for the lint rules: it finds every simple command
//! (also inside `$(...)`, backticks, subshells, `if`/`for`/`while`/`case` bodies) with its
//! words after quote removal, and expands the variables whose values are known (the stage's
//! ARG and ENV, assignments earlier in the script). A word that holds anything unknown (an
//! unset variable, a command substitution) is marked so, and rules stay silent on it rather
//! than guess: a false positive is a bug.
//!
//! It reads POSIX sh with the bash extensions Dockerfiles use; it is not a shell and never
//! fails: text it cannot follow ends the command it is in.

use std::collections::HashMap;

/// One word of a command after quote removal and expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    /// False when part of the word is unknown until the command runs.
    pub known: bool,
}

/// A simple command: `name arg...`, with redirections and assignments taken out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub name: Word,
    pub args: Vec<Word>,
}

impl Command {
    /// The command's name when it is known: `apt-get`, `/usr/bin/apt-get` → `apt-get`.
    pub fn is(&self, name: &str) -> bool {
        // Every rule asks of every command, so no splitting: the text ends with `name`,
        // after a `/` or nothing.
        let text = &self.name.text;
        self.name.known
            && text.ends_with(name)
            && text[..text.len() - name.len()]
                .chars()
                .next_back()
                .is_none_or(|c| c == '/')
    }

    /// Whether any argument is exactly `arg`.
    pub fn has_arg(&self, arg: &str) -> bool {
        self.args.iter().any(|a| a.text == arg)
    }

    /// The option letters and names given, as hadolint reads them: `-xyz` gives x, y, z,
    /// `--name=value` gives name. Arguments after `--` are not options.
    pub fn flags(&self) -> impl Iterator<Item = &str> {
        self.args
            .iter()
            .take_while(|a| a.text != "--")
            .flat_map(|a| {
                let t = a.text.as_str();
                let found: Vec<&str> = if let Some(long) = t.strip_prefix("--") {
                    vec![long.split('=').next().unwrap_or(long)]
                } else if let Some(short) = t.strip_prefix('-').filter(|s| !s.is_empty()) {
                    short
                        .char_indices()
                        .map(|(i, c)| &short[i..i + c.len_utf8()])
                        .collect()
                } else {
                    Vec::new()
                };
                found
            })
    }

    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags().any(|f| f == flag)
    }

    /// The first argument that is not an option, and the ones after it: the subcommand
    /// and its operands (`apt-get -y install x` → `install`, `x`). Options that take a
    /// value are named in `valued` (`-o`, `--option`), so their value is skipped.
    pub fn operands<'a>(&'a self, valued: &'a [&str]) -> impl Iterator<Item = &'a Word> + 'a {
        let mut skip_next = false;
        let mut after_dashes = false;
        self.args.iter().filter(move |a| {
            if skip_next {
                skip_next = false;
                return false;
            }
            if after_dashes {
                return true;
            }
            if a.text == "--" {
                after_dashes = true;
                return false;
            }
            if a.text.starts_with('-') && a.text.len() > 1 {
                skip_next = valued.contains(&a.text.as_str());
                return false;
            }
            true
        })
    }
}

/// What the reader found in one script.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Script {
    pub commands: Vec<Command>,
    /// Whether a pipeline (`a | b`) joins two commands anywhere.
    pub pipes: bool,
}

impl Script {
    pub fn find<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Command> + 'a {
        self.commands.iter().filter(move |c| c.is(name))
    }

    pub fn any(&self, name: &str) -> bool {
        self.find(name).next().is_some()
    }
}

/// Reads `src`; `vars` answers the values known before the script starts.
pub fn read(src: &str, vars: &dyn Fn(&str) -> Option<String>) -> Script {
    let mut reader = Reader {
        chars: src.chars().collect(),
        pos: 0,
        vars,
        local: HashMap::new(),
        script: Script::default(),
        heredocs: Vec::new(),
    };
    reader.list(None);
    reader.script
}

const RESERVED_COMMAND_START: [&str; 13] = [
    "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "{", "}", "!", "time",
];

struct Reader<'a> {
    chars: Vec<char>,
    pos: usize,
    vars: &'a dyn Fn(&str) -> Option<String>,
    /// Assignments made by the script itself: None when the value is unknown.
    local: HashMap<String, Option<String>>,
    script: Script,
    /// Here-documents whose bodies start after the current line: (delimiter, strip tabs).
    heredocs: Vec<(String, bool)>,
}

/// What ended a command.
#[derive(PartialEq)]
enum End {
    Eof,
    Close,
    Pipe,
    CaseItem,
    Other,
}

impl Reader<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.pos + n).copied()
    }

    fn starts_with(&self, s: &str) -> bool {
        s.chars()
            .enumerate()
            .all(|(i, c)| self.peek_at(i) == Some(c))
    }

    fn lookup(&self, name: &str) -> Option<String> {
        match self.local.get(name) {
            Some(v) => v.clone(),
            None => (self.vars)(name),
        }
    }

    /// Commands up to the end, or up to an unmatched `)` when `close` is given.
    fn list(&mut self, close: Option<char>) {
        let mut case_depth = 0usize;
        let mut in_pattern = false;
        loop {
            if in_pattern {
                self.case_pattern();
                in_pattern = false;
            }
            match self.command(close, &mut case_depth, &mut in_pattern) {
                End::Eof | End::Close => return,
                End::Pipe => self.script.pipes = true,
                End::CaseItem => in_pattern = case_depth > 0,
                End::Other => {}
            }
        }
    }

    /// Skips a `case` pattern up to and including its `)`.
    fn case_pattern(&mut self) {
        self.blanks(true);
        while let Some(c) = self.peek() {
            if self.starts_with("esac") {
                return;
            }
            self.pos += 1;
            match c {
                '\\' => self.pos += 1,
                '\'' | '"' => {
                    self.quoted_skip(c);
                }
                ')' => return,
                _ => {}
            }
        }
    }

    fn quoted_skip(&mut self, quote: char) {
        while let Some(c) = self.peek() {
            self.pos += 1;
            if c == quote {
                return;
            }
            if c == '\\' && quote == '"' {
                self.pos += 1;
            }
        }
    }

    /// Skips spaces, tabs and line continuations; with `newlines`, also line ends and
    /// comments.
    fn blanks(&mut self, newlines: bool) {
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\r' => self.pos += 1,
                '\\' if self.peek_at(1) == Some('\n') => self.pos += 2,
                '\n' if newlines => self.newline(),
                '#' if newlines => self.comment(),
                _ => return,
            }
        }
    }

    fn comment(&mut self) {
        while self.peek().is_some_and(|c| c != '\n') {
            self.pos += 1;
        }
    }

    /// Past a line end, and past the bodies of here-documents opened on that line.
    fn newline(&mut self) {
        self.pos += 1;
        for (delim, strip) in std::mem::take(&mut self.heredocs) {
            while self.pos < self.chars.len() {
                let start = self.pos;
                while self.peek().is_some_and(|c| c != '\n') {
                    self.pos += 1;
                }
                let line: String = self.chars[start..self.pos].iter().collect();
                if self.pos < self.chars.len() {
                    self.pos += 1;
                }
                let line = if strip {
                    line.trim_start_matches('\t')
                } else {
                    &line
                };
                if line.trim_end_matches('\r') == delim {
                    break;
                }
            }
        }
    }

    /// One simple command (or a keyword that opens or closes a compound one).
    fn command(
        &mut self,
        close: Option<char>,
        case_depth: &mut usize,
        in_pattern: &mut bool,
    ) -> End {
        let mut words: Vec<Word> = Vec::new();
        let mut assignments: Vec<(String, Option<String>)> = Vec::new();
        let mut for_header = false;
        self.blanks(false);
        let end = loop {
            self.blanks(false);
            let Some(c) = self.peek() else {
                break End::Eof;
            };
            match c {
                '\n' => {
                    self.newline();
                    break End::Other;
                }
                '#' if words.is_empty() || self.chars[self.pos - 1].is_whitespace() => {
                    self.comment();
                    continue;
                }
                ';' => {
                    self.pos += 1;
                    if matches!(self.peek(), Some(';') | Some('&')) {
                        self.pos += 1;
                        if self.peek() == Some('&') {
                            self.pos += 1;
                        }
                        break End::CaseItem;
                    }
                    break End::Other;
                }
                '&' => {
                    self.pos += 1;
                    if self.peek() == Some('&') {
                        self.pos += 1;
                    } else if self.peek() == Some('>') {
                        // `&>file`: a redirection of both streams.
                        self.pos += 1;
                        if self.peek() == Some('>') {
                            self.pos += 1;
                        }
                        self.blanks(false);
                        self.word();
                        continue;
                    }
                    break End::Other;
                }
                '|' => {
                    self.pos += 1;
                    if self.peek() == Some('|') {
                        self.pos += 1;
                        break End::Other;
                    }
                    if self.peek() == Some('&') {
                        self.pos += 1;
                    }
                    break End::Pipe;
                }
                '(' => {
                    self.pos += 1;
                    if self.peek() == Some('(') {
                        // `(( arithmetic ))`
                        self.skip_to_close('(', ')');
                        continue;
                    }
                    if !words.is_empty() && self.peek() == Some(')') {
                        // `name() { ... }`: a function definition; its body follows.
                        self.pos += 1;
                        words.clear();
                        continue;
                    }
                    self.list(Some(')'));
                    continue;
                }
                ')' => {
                    if close == Some(')') {
                        self.pos += 1;
                        break End::Close;
                    }
                    self.pos += 1;
                    break End::Other;
                }
                '<' | '>' => {
                    self.redirection();
                    continue;
                }
                d if d.is_ascii_digit() && self.is_fd_redirection() => {
                    self.pos += 1;
                    continue;
                }
                _ => {}
            }
            let Some(word) = self.word() else {
                // Nothing could be read here: step over it rather than stall.
                self.pos += 1;
                continue;
            };
            if words.is_empty() && for_header {
                if word.iter().any(|w| w.text == "do") {
                    for_header = false;
                }
                continue;
            }
            if words.is_empty() && assignments.is_empty() {
                if let Some(first) = word.first() {
                    match first.text.as_str() {
                        "for" | "select" if first.known => {
                            for_header = true;
                            continue;
                        }
                        "case" if first.known => {
                            // `case WORD in`: the patterns follow.
                            self.blanks(false);
                            self.word();
                            self.blanks(false);
                            self.word();
                            *case_depth += 1;
                            *in_pattern = true;
                            return End::Other;
                        }
                        "esac" if first.known => {
                            *case_depth = case_depth.saturating_sub(1);
                            continue;
                        }
                        "[[" if first.known => {
                            self.skip_test();
                            continue;
                        }
                        k if first.known && RESERVED_COMMAND_START.contains(&k) => continue,
                        _ => {}
                    }
                }
            }
            if words.is_empty() && word.len() == 1 {
                if let Some((name, value)) = assignment(&word[0]) {
                    assignments.push((name, value));
                    continue;
                }
            }
            words.extend(word);
        };
        if words.is_empty() {
            // Assignments alone set shell variables for what follows.
            for (name, value) in assignments {
                self.local.insert(name, value);
            }
        } else {
            let name = words.remove(0);
            if name.known
                && matches!(
                    name.text.as_str(),
                    "export" | "readonly" | "local" | "declare"
                )
            {
                for w in &words {
                    if let Some((k, v)) = w.text.split_once('=') {
                        let value = w.known.then(|| v.to_string());
                        self.local.insert(k.to_string(), value);
                    }
                }
            }
            self.script.commands.push(Command { name, args: words });
        }
        end
    }

    /// A digit starts a redirection when `<` or `>` follows it (`2>&1`, `3<file`).
    fn is_fd_redirection(&self) -> bool {
        let prev_blank = self.pos == 0 || self.chars[self.pos - 1].is_whitespace();
        let mut i = self.pos;
        while self.chars.get(i).is_some_and(|c| c.is_ascii_digit()) {
            i += 1;
        }
        prev_blank && matches!(self.chars.get(i), Some('<') | Some('>'))
    }

    /// `<`, `>`, `>>`, `>&`, `<&`, `>|`, `<>`, `<<<`, `<<DELIM`, `<<-DELIM` and the word
    /// after it, which is not an argument.
    fn redirection(&mut self) {
        let heredoc = self.starts_with("<<") && !self.starts_with("<<<");
        if heredoc {
            self.pos += 2;
            let strip = self.peek() == Some('-');
            if strip {
                self.pos += 1;
            }
            self.blanks(false);
            let start = self.pos;
            if let Some(word) = self.word() {
                let raw: String = self.chars[start..self.pos].iter().collect();
                let delim = word
                    .first()
                    .map(|w| w.text.clone())
                    .unwrap_or_else(|| raw.replace(['\'', '"', '\\'], ""));
                self.heredocs.push((delim, strip));
            }
            return;
        }
        while matches!(self.peek(), Some('<') | Some('>') | Some('&') | Some('|')) {
            self.pos += 1;
        }
        self.blanks(false);
        if self.peek() == Some('-') {
            // `>&-`: close the descriptor.
            self.pos += 1;
            return;
        }
        self.word();
    }

    /// Past the matching `close` of an `open` just read, counting nesting and quotes.
    fn skip_to_close(&mut self, open: char, close: char) -> String {
        let start = self.pos;
        let mut depth = 1;
        while let Some(c) = self.peek() {
            self.pos += 1;
            match c {
                '\\' => self.pos += 1,
                '\'' => self.quoted_skip('\''),
                '"' => self.quoted_skip('"'),
                c if c == open => depth += 1,
                c if c == close => {
                    depth -= 1;
                    if depth == 0 {
                        return self.chars[start..self.pos - 1].iter().collect();
                    }
                }
                _ => {}
            }
        }
        self.chars[start..].iter().collect()
    }

    /// Past a `[[ ... ]]` test, whose `<`, `>`, `&&` and `||` are not operators.
    fn skip_test(&mut self) {
        while self.pos < self.chars.len() && !self.starts_with("]]") {
            self.pos += 1;
        }
        self.pos = (self.pos + 2).min(self.chars.len());
    }

    /// Reads a command substitution's text as a script of its own, keeping its commands.
    fn substitution(&mut self, text: &str) {
        let inner = read(text, &|name| self.lookup(name));
        self.script.pipes |= inner.pipes;
        self.script.commands.extend(inner.commands);
    }

    /// One shell word, which may become several after splitting an unquoted expansion.
    /// None when no word starts here.
    fn word(&mut self) -> Option<Vec<Word>> {
        let mut fields: Vec<String> = vec![String::new()];
        let mut known = true;
        let mut any = false;
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\n' | '\r' | ';' | '&' | '|' | '(' | ')' | '<' | '>' => break,
                '\\' => {
                    self.pos += 1;
                    match self.peek() {
                        Some('\n') => self.pos += 1,
                        Some(c) => {
                            fields.last_mut().unwrap().push(c);
                            self.pos += 1;
                        }
                        None => {}
                    }
                }
                '\'' => {
                    self.pos += 1;
                    while let Some(c) = self.peek() {
                        self.pos += 1;
                        if c == '\'' {
                            break;
                        }
                        fields.last_mut().unwrap().push(c);
                    }
                }
                '"' => {
                    self.pos += 1;
                    while let Some(c) = self.peek() {
                        match c {
                            '"' => {
                                self.pos += 1;
                                break;
                            }
                            '\\' => {
                                self.pos += 1;
                                match self.peek() {
                                    Some('\n') => self.pos += 1,
                                    Some(e @ ('$' | '`' | '"' | '\\')) => {
                                        fields.last_mut().unwrap().push(e);
                                        self.pos += 1;
                                    }
                                    _ => fields.last_mut().unwrap().push('\\'),
                                }
                            }
                            '$' | '`' => {
                                if let Some(v) = self.expansion() {
                                    fields.last_mut().unwrap().push_str(&v);
                                } else {
                                    known = false;
                                }
                            }
                            c => {
                                fields.last_mut().unwrap().push(c);
                                self.pos += 1;
                            }
                        }
                    }
                }
                '$' | '`' => match self.expansion() {
                    Some(v) => {
                        // Unquoted: the value is split into fields at blanks.
                        let mut parts = v.split([' ', '\t', '\n']);
                        if let Some(first) = parts.next() {
                            fields.last_mut().unwrap().push_str(first);
                        }
                        for part in parts {
                            fields.push(part.to_string());
                        }
                    }
                    None => known = false,
                },
                c => {
                    fields.last_mut().unwrap().push(c);
                    self.pos += 1;
                }
            }
            any = true;
        }
        if !any {
            return None;
        }
        Some(
            fields
                .into_iter()
                .filter(|f| !f.is_empty() || !known)
                .map(|text| Word { text, known })
                .collect(),
        )
    }

    /// A `$...` or backtick expansion at the cursor: its value when known. A `$` that
    /// starts nothing is a literal `$`.
    fn expansion(&mut self) -> Option<String> {
        if self.peek() == Some('`') {
            self.pos += 1;
            let start = self.pos;
            while let Some(c) = self.peek() {
                self.pos += 1;
                match c {
                    '\\' => self.pos += 1,
                    '`' => break,
                    _ => {}
                }
            }
            let end = self.pos.saturating_sub(1).max(start);
            let text: String = self.chars[start..end].iter().collect();
            self.substitution(&text);
            return None;
        }
        self.pos += 1; // `$`
        match self.peek() {
            Some('(') => {
                self.pos += 1;
                if self.peek() == Some('(') {
                    self.pos += 1;
                    self.skip_to_close('(', ')');
                    if self.peek() == Some(')') {
                        self.pos += 1;
                    }
                    return None;
                }
                let text = self.skip_to_close('(', ')');
                self.substitution(&text);
                None
            }
            Some('{') => {
                self.pos += 1;
                let inner = self.skip_to_close('{', '}');
                self.parameter(&inner)
            }
            Some('\'') => {
                // `$'...'`: ANSI-C quoting, read as literal text.
                self.pos += 1;
                let start = self.pos;
                self.quoted_skip('\'');
                Some(self.chars[start..self.pos - 1].iter().collect())
            }
            Some(c) if c == '_' || c.is_ascii_alphabetic() => {
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|c| c == '_' || c.is_ascii_alphanumeric())
                {
                    self.pos += 1;
                }
                let name: String = self.chars[start..self.pos].iter().collect();
                self.lookup(&name)
            }
            Some(c) if c.is_ascii_digit() || "@*#?$!-".contains(c) => {
                self.pos += 1;
                None
            }
            _ => Some("$".to_string()),
        }
    }

    /// `${NAME}`, `${NAME:-word}` and the like: known only when NAME is.
    fn parameter(&self, inner: &str) -> Option<String> {
        let name_end = inner
            .find(|c: char| !(c == '_' || c.is_ascii_alphanumeric()))
            .unwrap_or(inner.len());
        let (name, op) = inner.split_at(name_end);
        if name.is_empty() {
            return None;
        }
        let value = self.lookup(name)?;
        match op {
            "" => Some(value),
            _ if op.starts_with(":-") || op.starts_with(":=") => {
                (!value.is_empty()).then_some(value)
            }
            _ if op.starts_with('-') || op.starts_with('=') => Some(value),
            _ => None,
        }
    }
}

/// `NAME=value` before a command's name: the name and the value when it is known.
fn assignment(word: &Word) -> Option<(String, Option<String>)> {
    let (name, value) = word.text.split_once('=')?;
    let valid = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric());
    valid.then(|| (name.to_string(), word.known.then(|| value.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_is_known_by_its_name_or_a_path_ending_in_it() {
        let cmds = read(
            "apt-get x; /usr/bin/apt-get y; my-apt-get z; $X apt-get",
            &|_| None,
        )
        .commands;
        let is: Vec<bool> = cmds.iter().map(|c| c.is("apt-get")).collect();
        // The last one's name is a variable: not known, whatever it holds.
        assert_eq!(is, [true, true, false, false]);
    }

    fn names(src: &str) -> Vec<String> {
        read(src, &|_| None)
            .commands
            .iter()
            .map(|c| c.name.text.clone())
            .collect()
    }

    fn args(src: &str, vars: &[(&str, &str)]) -> Vec<(String, bool)> {
        let lookup = |n: &str| {
            vars.iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        };
        read(src, &lookup)
            .commands
            .last()
            .unwrap()
            .args
            .iter()
            .map(|w| (w.text.clone(), w.known))
            .collect()
    }

    #[test]
    fn commands_are_found_in_lists_pipes_and_compound_commands() {
        assert_eq!(
            names("set -eux; apt-get update && apt-get install -y curl || true"),
            ["set", "apt-get", "apt-get", "true"]
        );
        assert_eq!(
            names("if [ -f x ]; then rm x; elif true; then :; else echo no; fi"),
            ["[", "rm", "true", ":", "echo"]
        );
        assert_eq!(
            names("for f in a b; do echo $f; done; while read l; do cat; done < file"),
            ["echo", "read", "cat"]
        );
        assert_eq!(
            names("case \"$arch\" in amd64|x86_64) a=1; b ;; arm64) c ;; *) exit 1 ;; esac; d"),
            ["b", "c", "exit", "d"]
        );
        assert_eq!(
            names("x=$(dpkg --print-architecture | cut -d- -f1) && ( cd /tmp; make )"),
            ["dpkg", "cut", "cd", "make"]
        );
        assert_eq!(names("echo `uname -m`"), ["uname", "echo"]);
        assert_eq!(names("f() { g; }; [[ a < b && c ]] && h"), ["g", "h"]);
        assert_eq!(names("cat <<EOF > x\napt-get no\nEOF\nls"), ["cat", "ls"]);
        assert_eq!(
            names("echo a # apt-get comment\nls 2>&1 >/dev/null"),
            ["echo", "ls"]
        );
        let s = read("curl -s x | sh", &|_| None);
        assert!(s.pipes);
        assert!(!read("a || b && c", &|_| None).pipes);
    }

    #[test]
    fn words_lose_their_quotes_and_known_variables_expand() {
        assert_eq!(
            args(r#"x 'a b' "c $V" d\ e ${V}f"#, &[("V", "v")]),
            [
                ("a b".to_string(), true),
                ("c v".into(), true),
                ("d e".into(), true),
                ("vf".into(), true)
            ]
        );
        // Unquoted expansions split; unknown ones leave the word unknown.
        assert_eq!(
            args("apk add $DEPS $NOPE", &[("DEPS", "gcc make")]),
            [
                ("add".to_string(), true),
                ("gcc".into(), true),
                ("make".into(), true),
                ("".into(), false)
            ]
        );
        // Assignments in the script are known afterwards.
        assert_eq!(args("V=1; x $V-$(date)", &[]), [("1-".to_string(), false)]);
    }

    #[test]
    fn flags_and_operands_read_as_hadolint_reads_them() {
        let s = read(
            "apt-get -qq -o Dpkg::Options=x --no-install-recommends install a -- -b",
            &|_| None,
        );
        let c = &s.commands[0];
        assert!(c.has_flag("q") && c.has_flag("no-install-recommends") && !c.has_flag("b"));
        let ops: Vec<&str> = c.operands(&["-o"]).map(|w| w.text.as_str()).collect();
        assert_eq!(ops, ["install", "a", "-b"]);
    }
}
