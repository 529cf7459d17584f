//! Sizes as Docker reads them (`units.RAMInBytes`): a number, optionally with a fraction,
//! and a unit `k`, `m`, `g`, `t` or `p` — always binary (`64m` is 64 MiB, `5GB` is 5 GiB) —
//! optionally followed by `i` and `b`, in any case. The one grammar for every size kiln
//! takes (`--mount=type=tmpfs,size=`, `--shm-size`, `--keep-storage`,
//! `KILN_BUILD_CACHE_LIMIT`).

/// The number of bytes `text` names, or None when it is not a size.
pub fn parse(text: &str) -> Option<u64> {
    let t = text.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit = unit.trim_start();
    let unit = unit.strip_suffix('b').unwrap_or(unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let scale: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        "p" => 1 << 50,
        _ => return None,
    };
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let bytes = value * scale as f64;
    (bytes.is_finite() && bytes < u64::MAX as f64).then_some(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn sizes_read_as_docker_reads_them() {
        assert_eq!(parse("1024"), Some(1024));
        assert_eq!(parse("64m"), Some(64 << 20));
        assert_eq!(parse("64M"), Some(64 << 20));
        assert_eq!(parse("5GB"), Some(5 << 30));
        assert_eq!(parse("512MiB"), Some(512 << 20));
        assert_eq!(parse("1.5g"), Some(3 << 29));
        assert_eq!(parse("10 kb"), Some(10 << 10));
        for bad in ["", "m", "1x", "1.2.3g", "-1", ".5k", "5kbb"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
