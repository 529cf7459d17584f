//! The parser and the expander take any input without panicking: random bytes, random
//! sequences of the tokens that matter to the grammar, and random mutations of the real
//! Dockerfiles in the shared corpus. Whatever parses must also expand without panicking.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use proptest::prelude::*;

fn corpus() -> &'static [String] {
    static FILES: OnceLock<Vec<String>> = OnceLock::new();
    FILES.get_or_init(|| {
        kiln_testkit::corpus_files()
            .iter()
            .map(|p| {
                String::from_utf8_lossy(&std::fs::read(p).expect("read corpus file")).into_owned()
            })
            .collect()
    })
}

/// Fragments that steer the grammar into its corners.
const TOKENS: &[&str] = &[
    "FROM ",
    "RUN ",
    "COPY ",
    "ADD ",
    "ENV ",
    "ARG ",
    "LABEL ",
    "ONBUILD ",
    "HEALTHCHECK ",
    "CMD ",
    "SHELL ",
    "EXPOSE ",
    "VOLUME ",
    "WORKDIR ",
    "USER ",
    "STOPSIGNAL ",
    "MAINTAINER ",
    "ENTRYPOINT ",
    "NONE",
    "AS ",
    "\\\n",
    "`\n",
    "\\",
    "`",
    "\n",
    "\r\n",
    "\r",
    " ",
    "\t",
    "#",
    "# escape=`\n",
    "# syntax=x\n",
    "\u{feff}",
    "<<EOF",
    "<<-EOF",
    "<<'EOF'",
    "<<\"EOF\"",
    "EOF\n",
    "\tEOF\n",
    "3<<",
    "[",
    "]",
    "\"",
    "'",
    ",",
    "=",
    "--mount=type=cache,target=/x",
    "--mount=",
    "--from=a",
    "--link",
    "--",
    "--network=none",
    "a",
    "b=c",
    "$",
    "${",
    "}",
    ":-",
    "##",
    "%%",
    "/",
    "{",
    "\u{1F}",
    "é",
    "\\u00",
    "[\"a\"]",
    "[1]",
    "[[[[",
    "{{",
];

fn tokens() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..80).prop_map(|t| t.concat())
}

/// A corpus file with a few insertions, deletions or replacements at random places.
fn mutated_corpus_file() -> impl Strategy<Value = String> {
    let edits = prop::collection::vec(
        (
            any::<prop::sample::Index>(),
            0u8..3,
            prop::sample::select(TOKENS),
            0usize..40,
        ),
        1..6,
    );
    (any::<prop::sample::Index>(), edits).prop_map(|(file, edits)| {
        let files = corpus();
        let mut text: Vec<char> = files[file.index(files.len())].chars().collect();
        for (at, op, token, len) in edits {
            let pos = at.index(text.len() + 1);
            match op {
                0 => drop(text.splice(pos..pos, token.chars())),
                1 => drop(text.drain(pos..(pos + len).min(text.len()))),
                _ => drop(text.splice(pos..(pos + len).min(text.len()), token.chars())),
            }
        }
        text.into_iter().collect()
    })
}

fn parse_and_expand(text: &str) {
    if let Ok(df) = kiln_builder::parse("fuzz", text) {
        let _ = kiln_builder::expand::dockerfile(&df, &BTreeMap::new());
        let _ = kiln_builder::json::dockerfile(&df);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1500)) {
        parse_and_expand(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn random_token_sequences_never_panic(text in tokens()) {
        parse_and_expand(&text);
    }

    #[test]
    fn mutated_corpus_files_never_panic(text in mutated_corpus_file()) {
        parse_and_expand(&text);
    }

    #[test]
    fn expansion_of_random_words_never_panics(text in tokens()) {
        let vars: BTreeMap<String, String> = [("a".to_string(), "x y".to_string())].into();
        let _ = kiln_builder::expand::word(&text, '\\', &vars);
        let _ = kiln_builder::expand::words(&text, '`', &vars);
        let _ = kiln_builder::expand::heredoc(&text, &vars);
    }
}

#[test]
fn deep_nesting_does_not_overflow_the_stack() {
    for unit in ["[", "{", "ONBUILD ", "${a:-", "\"${a:-"] {
        let text = format!(
            "FROM a\nCMD {}\nENV X={}\n",
            unit.repeat(200_000),
            unit.repeat(2_000)
        );
        parse_and_expand(&text);
    }
}
