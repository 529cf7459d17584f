//! Layer tests' kit: tars made header by header.

/// A tar built byte by byte, so it can hold what `tar::Builder` refuses to write: each
/// entry's path, type and link target; regular files hold `pwned`.
pub fn crafted<S: AsRef<str>>(entries: &[(S, tar::EntryType, S)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (path, kind, link) in entries {
        let (path, link) = (path.as_ref(), link.as_ref());
        let mut h = tar::Header::new_ustar();
        h.as_ustar_mut().unwrap().name[..path.len()].copy_from_slice(path.as_bytes());
        h.as_ustar_mut().unwrap().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        let data: &[u8] = if *kind == tar::EntryType::Regular {
            b"pwned"
        } else {
            b""
        };
        h.set_size(data.len() as u64);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}
