//! Compose's variable interpolation, applied to every string value of a file before it
//! is read into the model (keys are left alone, as Docker Compose leaves them):
//! `$VAR`, `${VAR}`, `${VAR:-default}` (unset or empty), `${VAR-default}` (unset),
//! `${VAR:?error}`, `${VAR?error}`, `${VAR:+replacement}`, `${VAR+replacement}`, and
//! `$$` for a literal `$`. Defaults and replacements are interpolated themselves
//! (`${A:-${B}}`).

/// Why a string could not be interpolated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// `${VAR:?message}` or `${VAR?message}` with VAR missing (or empty, for `:?`).
    Required {
        /// The variable.
        variable: String,
        /// The file's message for it.
        message: String,
    },
    /// A `${` without its `}`, or an unknown modifier.
    Syntax {
        /// The text with the expression.
        text: String,
    },
}

/// `text` with its variables replaced through `lookup`.
pub fn interpolate(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, Failure> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(more) = after.strip_prefix('$') {
            out.push('$');
            rest = more;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = closing_brace(body).ok_or_else(|| Failure::Syntax {
                text: text.to_string(),
            })?;
            out.push_str(&braced(&body[..end], text, lookup)?);
            rest = &body[end + 1..];
        } else {
            let name_len = after
                .char_indices()
                .find(|(i, c)| {
                    !(c.is_ascii_alphanumeric() || *c == '_') || (*i == 0 && c.is_ascii_digit())
                })
                .map_or(after.len(), |(i, _)| i);
            if name_len == 0 {
                // A `$` that starts no name stays as it is.
                out.push('$');
            } else {
                out.push_str(&lookup(&after[..name_len]).unwrap_or_default());
            }
            rest = &after[name_len..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The index of the `}` that closes a `${`, nested `${…}` skipped.
fn closing_brace(body: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// One `${…}` body: a name and an optional modifier.
fn braced(
    body: &str,
    whole: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Failure> {
    let name_len = body
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(body.len());
    let (name, modifier) = body.split_at(name_len);
    if name.is_empty() {
        return Err(Failure::Syntax {
            text: whole.to_string(),
        });
    }
    let value = lookup(name);
    let set = value.is_some();
    let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
    let nested = |text: &str| interpolate(text, lookup);
    let (op, arg) = if let Some(arg) = modifier.strip_prefix(":-") {
        (":-", arg)
    } else if let Some(arg) = modifier.strip_prefix(":?") {
        (":?", arg)
    } else if let Some(arg) = modifier.strip_prefix(":+") {
        (":+", arg)
    } else if modifier.is_empty() {
        ("", "")
    } else {
        modifier.split_at(1)
    };
    match op {
        "" => Ok(value.unwrap_or_default()),
        ":-" if non_empty => Ok(value.unwrap_or_default()),
        ":-" => nested(arg),
        "-" if set => Ok(value.unwrap_or_default()),
        "-" => nested(arg),
        ":?" | "?" if (op == ":?" && non_empty) || (op == "?" && set) => {
            Ok(value.unwrap_or_default())
        }
        ":?" | "?" => Err(Failure::Required {
            variable: name.to_string(),
            message: nested(arg)?,
        }),
        ":+" if non_empty => nested(arg),
        "+" if set => nested(arg),
        ":+" | "+" => Ok(String::new()),
        _ => Err(Failure::Syntax {
            text: whole.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)], text: &str) -> Result<String, Failure> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        interpolate(text, &|name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn composes_forms_replace_as_the_specification_says() {
        let vars = [("TAG", "1.2"), ("EMPTY", ""), ("HOST", "db")];
        let cases = [
            ("image: app:${TAG}", "image: app:1.2"),
            ("$TAG-$HOST", "1.2-db"),
            ("${MISSING}", ""),
            ("${MISSING:-latest}", "latest"),
            ("${EMPTY:-latest}", "latest"),
            ("${EMPTY-latest}", ""),
            ("${MISSING-latest}", "latest"),
            ("${TAG:+set}", "set"),
            ("${EMPTY:+set}", ""),
            ("${EMPTY+set}", "set"),
            ("${MISSING:-${HOST}:5432}", "db:5432"),
            ("cost: $$5 and $${TAG}", "cost: $5 and ${TAG}"),
            ("a $ alone", "a $ alone"),
        ];
        for (text, want) in cases {
            assert_eq!(with(&vars, text).as_deref(), Ok(want), "{text}");
        }
        assert_eq!(
            with(&vars, "${EMPTY:?set EMPTY first}"),
            Err(Failure::Required {
                variable: "EMPTY".into(),
                message: "set EMPTY first".into()
            })
        );
        assert_eq!(with(&vars, "${EMPTY?unset}").as_deref(), Ok(""));
        assert!(matches!(
            with(&vars, "${MISSING?no}"),
            Err(Failure::Required { .. })
        ));
        assert!(matches!(with(&vars, "${TAG"), Err(Failure::Syntax { .. })));
        assert!(matches!(
            with(&vars, "${TAG!x}"),
            Err(Failure::Syntax { .. })
        ));
    }
}
