//! `.env` and `env_file` files as Docker Compose reads them: `KEY=VALUE` lines
//! (`export ` allowed before), blank lines and `#` comments skipped, `'single'` quotes
//! literal, `"double"` quotes with `\n`, `\t`, `\"` and `\\` escapes, a ` #` after an
//! unquoted value starting a comment, and `${VAR}` in unquoted and double-quoted values
//! taken from the lines above or the environment; `KEY` alone takes the environment's.

use crate::interpolate::{interpolate, Failure};

/// One bad line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    pub line: usize,
    pub reason: String,
}

/// The variables of a `.env` text, in order; `environment` resolves `${VAR}` and bare
/// `KEY` lines.
pub fn parse(
    text: &str,
    environment: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, BadLine> {
    let mut vars: Vec<(String, String)> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let bad = |reason: &str| BadLine {
            line: n + 1,
            reason: reason.to_string(),
        };
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v)),
            None => (line.trim(), None),
        };
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        {
            return Err(bad("a variable name is letters, digits, _ . and -"));
        }
        let lookup = |name: &str| {
            vars.iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .or_else(|| environment(name))
        };
        let value = match value {
            None => match environment(key) {
                Some(v) => v,
                None => continue,
            },
            Some(v) => {
                let v = v.trim_start();
                if let Some(body) = v.strip_prefix('\'') {
                    let end = body.find('\'').ok_or_else(|| bad("an unclosed ' quote"))?;
                    body[..end].to_string()
                } else if let Some(body) = v.strip_prefix('"') {
                    let (text, _) =
                        double_quoted(body).ok_or_else(|| bad("an unclosed \" quote"))?;
                    expand(&text, &lookup).map_err(|e| bad(&e))?
                } else {
                    let v = match v.find(" #") {
                        Some(at) => &v[..at],
                        None => v,
                    };
                    expand(v.trim_end(), &lookup).map_err(|e| bad(&e))?
                }
            }
        };
        vars.push((key.to_string(), value));
    }
    Ok(vars)
}

fn expand(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    interpolate(text, lookup).map_err(|e| match e {
        Failure::Required { variable, message } => format!("{variable}: {message}"),
        Failure::Syntax { text } => format!("bad variable syntax in {text:?}"),
    })
}

/// The text of a double-quoted value (its escapes applied) and what follows the quote.
fn double_quoted(body: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &body[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_lines_read_as_docker_compose_reads_them() {
        let text = "# a comment\n\nexport TAG=1.2\nNAME = web \nURL=http://${NAME}:${PORT}/x # port from the host\nSINGLE='${TAG} stays'\nDOUBLE=\"line\\nnext ${TAG}\"\nPORT\nUNSET\n";
        let env = |name: &str| (name == "PORT").then(|| "8080".to_string());
        let vars = parse(text, &env).unwrap();
        let get = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("TAG"), Some("1.2"));
        assert_eq!(get("NAME"), Some("web"));
        assert_eq!(get("URL"), Some("http://web:8080/x"));
        assert_eq!(get("SINGLE"), Some("${TAG} stays"));
        assert_eq!(get("DOUBLE"), Some("line\nnext 1.2"));
        assert_eq!(get("PORT"), Some("8080"));
        assert_eq!(get("UNSET"), None);
        let bad = parse("A=1\nB='open\n", &env).unwrap_err();
        assert_eq!(bad.line, 2);
        assert!(parse("bad key=1\n", &env).is_err());
    }
}
