//! `.dockerignore` against a table of cases (`testdata/dockerignore/cases.tsv`).

use kiln_builder::context::Dockerignore;

#[test]
fn dockerignore_matches_the_table() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/dockerignore/cases.tsv"
    );
    let table = std::fs::read_to_string(path).unwrap();
    let mut failures = Vec::new();
    let mut count = 0;
    for (n, line) in table
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.starts_with("# .dockerignore"))
    {
        let cols: Vec<&str> = line.split('\t').collect();
        let ignore = Dockerignore::parse(&cols[0].replace('|', "\n")).unwrap();
        let expected = cols[2] == "excluded";
        count += 1;
        if ignore.excludes(cols[1]) != expected {
            failures.push(format!(
                "line {}: {:?} on {:?}: expected {}",
                n + 1,
                cols[0],
                cols[1],
                cols[2]
            ));
        }
    }
    assert!(count >= 40);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_bare_exclamation_mark_is_refused() {
    let err = Dockerignore::parse("a\n!\n").unwrap_err().to_string();
    assert!(
        err.contains("line 2") && err.contains("illegal exclusion"),
        "{err}"
    );
}
