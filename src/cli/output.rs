//! How the image commands print: Docker's size and age formats, and aligned tables.

use std::time::{Duration, SystemTime};

/// A size a user wrote (`10GB`, `512m`, `4096`), read as docker reads it: see
/// `kiln_builder::size`.
pub fn parse_size(text: &str) -> anyhow::Result<u64> {
    kiln_builder::size::parse(text).ok_or_else(|| {
        anyhow::anyhow!("{text}: not a size (write e.g. 10GB, 512m or a number of bytes; units are binary, as docker's)")
    })
}

/// Docker's `HumanSizeWithPrecision(size, 3)`: decimal units, three significant digits.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    let digits = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    let text = format!("{value:.digits$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    format!("{text}{}", UNITS[unit])
}

/// "5 minutes ago", "2 days ago", as Docker words it; "N/A" when unknown.
pub fn since(created: Option<SystemTime>) -> String {
    let Some(created) = created else {
        return "N/A".into();
    };
    let age = SystemTime::now()
        .duration_since(created)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let (n, unit) = match age {
        0..=1 => return "Less than a second ago".into(),
        2..=59 => (age, "second"),
        60..=3599 => (age / 60, "minute"),
        3600..=172_799 => (age / 3600, "hour"),
        172_800..=1_209_599 => (age / 86_400, "day"),
        1_209_600..=5_183_999 => (age / 604_800, "week"),
        5_184_000..=63_071_999 => (age / 2_592_000, "month"),
        _ => (age / 31_536_000, "year"),
    };
    if n == 1 {
        let article = if unit == "hour" { "An" } else { "A" };
        format!("{article} {unit} ago")
    } else {
        format!("{n} {unit}s ago")
    }
}

pub fn parse_time(rfc3339: Option<&str>) -> Option<SystemTime> {
    rfc3339.and_then(|t| {
        humantime::parse_rfc3339_weak(t.trim_end_matches('Z').split('.').next()?).ok()
    })
}

/// Left-aligned columns separated by three spaces, as Docker's tabwriter prints them.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let all = std::iter::once(header.iter().map(|h| h.to_string()).collect::<Vec<_>>())
        .chain(rows.iter().cloned());
    for row in all {
        let last = row.len().saturating_sub(1);
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                out.push_str(&" ".repeat(widths[i] - cell.chars().count() + 3));
            }
        }
        out.push('\n');
    }
    out
}

/// The 12-digit short form of an image ID.
pub fn short_id(digest: &str) -> String {
    digest
        .split_once(':')
        .map_or(digest, |(_, hex)| hex)
        .chars()
        .take(12)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_dockers() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(7_812_345), "7.81MB");
        assert_eq!(human_size(77_812_345), "77.8MB");
        assert_eq!(human_size(1_234_567_890), "1.23GB");
    }

    #[test]
    fn ages_read_like_dockers() {
        let ago = |s: u64| since(Some(SystemTime::now() - Duration::from_secs(s)));
        assert_eq!(ago(30), "30 seconds ago");
        assert_eq!(ago(3600), "An hour ago");
        assert_eq!(ago(3 * 86_400), "3 days ago");
        assert_eq!(since(None), "N/A");
    }
}
