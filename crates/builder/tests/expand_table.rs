//! The expansion lexer against a text table (`testdata/expand/cases.tsv`): adding a case
//! is adding a line.

use std::collections::BTreeMap;

use kiln_builder::expand;

fn vars() -> BTreeMap<String, String> {
    [
        ("PWD", "/home"),
        ("EMPTY", ""),
        ("SPACES", "a b  c"),
        ("FILE", "app.tar.gz"),
        ("KOREAN", "한국어"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[test]
fn expansion_matches_the_table() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/expand/cases.tsv"
    );
    let table = std::fs::read_to_string(path).expect("read the table");
    let vars = vars();
    let mut failures = Vec::new();
    let mut count = 0;
    for (n, line) in table
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.starts_with('#') && !l.is_empty())
    {
        let mut cols = line.splitn(3, '\t');
        let (mode, input, expected) = (
            cols.next().unwrap(),
            cols.next().unwrap_or(""),
            cols.next().unwrap_or(""),
        );
        let actual: Result<String, String> = match mode {
            "word" => expand::word(input, '\\', &vars),
            "word-backtick" => expand::word(input, '`', &vars),
            "words" => expand::words(input, '\\', &vars).map(|w| w.join("|")),
            "heredoc" => expand::heredoc(input, &vars),
            other => panic!("line {}: unknown mode {other}", n + 1),
        };
        count += 1;
        let ok = match (expected.strip_prefix("error: "), &actual) {
            (Some(want), Err(got)) => got.contains(want),
            (None, Ok(got)) => got == expected,
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "line {}: {mode} {input:?}: expected {expected:?}, got {actual:?}",
                n + 1
            ));
        }
    }
    assert!(count > 50, "the table lost its cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
