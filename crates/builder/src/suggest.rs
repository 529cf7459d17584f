//! "Did you mean": the closest known word to a misspelt one.

/// The candidate closest to `word` by edit distance, ignoring case, if it is within a
/// third of the candidate's length (at least one edit).
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word = word.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (edit_distance(&word, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn the_nearest_word_within_a_third_of_its_length() {
        assert_eq!(closest("VERSON", ["VERSION", "BASE"]), Some("VERSION"));
        assert_eq!(closest("frm", ["FROM", "RUN"]), Some("FROM"));
        assert_eq!(closest("banana", ["FROM", "RUN"]), None);
    }
}
