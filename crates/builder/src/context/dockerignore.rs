//! `.dockerignore` with Docker's exact semantics (moby/patternmatcher): patterns are
//! cleaned like paths, a leading `/` is dropped, `*` and `?` stop at `/`, `**` crosses
//! directories, `!` re-includes, later lines win, and a pattern that matches a parent
//! directory matches everything under it.

use regex::Regex;

use crate::Error;

/// The patterns of one `.dockerignore`, in order.
#[derive(Debug, Default)]
pub struct Dockerignore {
    patterns: Vec<Pattern>,
}

#[derive(Debug)]
struct Pattern {
    exclusion: bool,
    regex: Regex,
}

impl Dockerignore {
    /// Parses the file's text; `#` lines are comments, blank lines are skipped.
    pub fn parse(text: &str) -> Result<Dockerignore, Error> {
        let mut patterns = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.starts_with('#') {
                continue;
            }
            let mut pattern = line.trim();
            if pattern.is_empty() {
                continue;
            }
            let exclusion = pattern.starts_with('!');
            if exclusion {
                pattern = pattern[1..].trim();
                if pattern.is_empty() {
                    return Err(Error::Dockerignore {
                        line: n + 1,
                        reason: "illegal exclusion pattern: \"!\"".into(),
                    });
                }
            }
            let mut cleaned = clean(pattern);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
            let regex = Regex::new(&to_regex(&cleaned)).map_err(|e| Error::Dockerignore {
                line: n + 1,
                reason: format!("bad pattern {pattern:?}: {e}"),
            })?;
            patterns.push(Pattern { exclusion, regex });
        }
        Ok(Dockerignore { patterns })
    }

    /// Whether `path` (relative to the context, `/`-separated) is left out of the context.
    pub fn excludes(&self, path: &str) -> bool {
        let parents: Vec<&str> = path
            .rsplit_once('/')
            .map(|(dir, _)| dir.split('/').collect())
            .unwrap_or_default();
        let mut matched = false;
        for p in &self.patterns {
            // An inclusion only matters while unmatched, an exclusion once matched.
            if p.exclusion != matched {
                continue;
            }
            let mut hit = p.regex.is_match(path);
            if !hit {
                hit = (1..=parents.len()).any(|i| p.regex.is_match(&parents[..i].join("/")));
            }
            if hit {
                matched = !p.exclusion;
            }
        }
        matched
    }

    /// Whether some `!` pattern could re-include a path under an excluded directory, in
    /// which case the directory must still be walked.
    pub fn has_exclusions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }
}

/// Go's `filepath.Clean` for `/`-separated paths.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// The pattern as an anchored regular expression, as patternmatcher compiles it (COPY's
/// wildcards use the same rules).
pub(crate) fn to_regex(pattern: &str) -> String {
    let mut re = String::from("^");
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '*' if chars.get(i + 1) == Some(&'*') => {
                i += 1;
                // `**/` is `**`.
                if chars.get(i + 1) == Some(&'/') {
                    i += 1;
                }
                if i + 1 == chars.len() {
                    re.push_str(".*");
                } else {
                    re.push_str("(.*/)?");
                }
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '\\' => {
                re.push('\\');
                if let Some(n) = chars.get(i + 1) {
                    re.push(*n);
                    i += 1;
                } else {
                    re.push('\\');
                }
            }
            '[' | ']' => re.push(c),
            '.' | '$' | '+' | '(' | ')' | '{' | '}' | '|' | '^' => {
                re.push('\\');
                re.push(c);
            }
            _ => re.push(c),
        }
        i += 1;
    }
    re.push('$');
    re
}
