//! Parse benchmark: every Dockerfile in the corpus, parsed in one process on one core.
//! Prints MB/s and files/s. Usage: parse-bench [CORPUS_DIR] [ROUNDS]

use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .unwrap_or_else(|| "../shared/corpus/dockerfiles".into());
    let rounds: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(20);
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read the corpus at {dir}: {e}"))
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "Dockerfile")
                || p.file_name().is_some_and(|n| n == "Containerfile")
        })
        .map(|p| {
            (
                p.display().to_string(),
                String::from_utf8_lossy(&std::fs::read(&p).expect("read")).into_owned(),
            )
        })
        .collect();
    files.sort();
    let bytes: usize = files.iter().map(|(_, t)| t.len()).sum();
    let mut best = f64::MAX;
    for _ in 0..rounds {
        let start = Instant::now();
        for (name, text) in &files {
            kiln_builder::parse(name, text).unwrap_or_else(|e| panic!("{e}"));
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    println!(
        "parse: {} files, {:.2} MB in {:.1} ms (best of {rounds}): {:.1} MB/s, {:.0} files/s",
        files.len(),
        bytes as f64 / 1e6,
        best * 1e3,
        bytes as f64 / 1e6 / best,
        files.len() as f64 / best
    );
}
