//! `-v`, `--mount` and `--tmpfs` as docker reads them, and the image's `VOLUME`s.

use std::path::Path;

use anyhow::bail;
use kiln_runtime::containers::{MountPoint, MountType};

/// An anonymous volume's name: 64 hex digits, as docker names them.
pub(crate) fn is_anonymous(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `-v SRC:DST[:OPTS]`, as docker reads it: an absolute SRC is a host path, another a
/// volume's name; DST alone is an anonymous volume.
fn volume_flag(spec: &str) -> anyhow::Result<MountPoint> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, destination, options) = match parts.as_slice() {
        [dst] => ("", *dst, ""),
        [src, dst] => (*src, *dst, ""),
        [src, dst, opts] => (*src, *dst, *opts),
        _ => bail!("-v {spec}: use SOURCE:DESTINATION[:ro]"),
    };
    let mut readonly = false;
    for o in options.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" | "readonly" => readonly = true,
            "rw" => readonly = false,
            // SELinux relabelling and propagation: nothing to do on this host.
            "z" | "Z" | "rprivate" | "private" => {}
            other => bail!("-v {spec}: unknown option {other} (use ro or rw)"),
        }
    }
    if !destination.starts_with('/') {
        bail!("-v {spec}: the destination {destination:?} must be an absolute path");
    }
    let kind = if source.starts_with('/') {
        MountType::Bind
    } else {
        MountType::Volume
    };
    Ok(MountPoint {
        kind,
        source: source.to_string(),
        destination: destination.to_string(),
        readonly,
    })
}

/// `--mount type=bind|volume|tmpfs,source=…,target=…[,readonly]`.
fn mount_flag(spec: &str) -> anyhow::Result<MountPoint> {
    let mut kind = MountType::Volume;
    let (mut source, mut destination, mut readonly) = (String::new(), String::new(), false);
    for field in spec.split(',') {
        let (k, v) = field.split_once('=').unwrap_or((field, ""));
        match k {
            "type" => {
                kind = match v {
                    "bind" => MountType::Bind,
                    "volume" => MountType::Volume,
                    "tmpfs" => MountType::Tmpfs,
                    other => bail!("--mount {spec}: type {other}: use bind, volume or tmpfs"),
                }
            }
            "source" | "src" => source = v.to_string(),
            "target" | "destination" | "dst" => destination = v.to_string(),
            "readonly" | "ro" => readonly = v.is_empty() || v == "true" || v == "1",
            other => bail!("--mount {spec}: unknown field {other}"),
        }
    }
    if !destination.starts_with('/') {
        bail!("--mount {spec}: give target=/absolute/path");
    }
    if kind == MountType::Bind && !Path::new(&source).exists() {
        bail!("--mount {spec}: bind source path does not exist: {source}");
    }
    Ok(MountPoint {
        kind,
        source,
        destination,
        readonly,
    })
}

/// The container's mounts: `-v`, `--mount`, `--tmpfs`, then an anonymous volume for each
/// image `VOLUME` none of them covers. Anonymous volumes get a random name here.
pub(crate) fn mount_points(
    volumes: &[String],
    mounts: &[String],
    tmpfs: &[String],
    image_volumes: &[String],
) -> anyhow::Result<Vec<MountPoint>> {
    let mut out = Vec::new();
    for v in volumes {
        out.push(volume_flag(v)?);
    }
    for m in mounts {
        out.push(mount_flag(m)?);
    }
    for t in tmpfs {
        let dst = t.split(':').next().unwrap_or(t);
        if !dst.starts_with('/') {
            bail!("--tmpfs {t}: give an absolute path");
        }
        out.push(MountPoint {
            kind: MountType::Tmpfs,
            source: String::new(),
            destination: dst.to_string(),
            readonly: false,
        });
    }
    for v in image_volumes {
        if !out.iter().any(|m| m.destination == *v) {
            out.push(MountPoint {
                kind: MountType::Volume,
                source: String::new(),
                destination: v.clone(),
                readonly: false,
            });
        }
    }
    for m in &mut out {
        if m.kind == MountType::Volume && m.source.is_empty() {
            m.source = super::run::random_id()?;
        }
        if m.kind == MountType::Volume && !kiln_runtime::volumes::valid_name(&m.source) {
            bail!("volume name {:?}: use letters, digits, _ . and -", m.source);
        }
    }
    // Parents first: a volume at /data before a bind at /data/conf.
    out.sort_by_key(|m| Path::new(&m.destination).components().count());
    Ok(out)
}
