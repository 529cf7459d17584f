//! `kiln import`: a root filesystem tarball (plain, gzip or zstd) as a one-layer image.

use std::io::{Cursor, Read};

use oci_spec::image::{Descriptor, MediaType};
use serde_json::json;

use crate::error::{Error, Result};
use crate::layer::Decompressor;
use crate::reference::Reference;
use crate::store::images::host_platform;
use crate::store::{ResolvedImage, Store};

/// Where the tarball came from and when, for the image's history.
pub struct ImportOptions {
    /// Shown in `kiln history` (`kiln import rootfs.tar`).
    pub source: String,
    /// Seconds since the epoch; `SOURCE_DATE_EPOCH` or now when None.
    pub created: Option<i64>,
    /// The image config's `config` object (`Env`, `Cmd`, ...): `--change`.
    pub config: serde_json::Value,
    /// The history entry's comment (`-m`); "Imported from tarball" when None.
    pub message: Option<String>,
    /// `os/arch[/variant]`; this host's when None.
    pub platform: Option<String>,
}

/// Stores the tarball, uncompressed (its digest is its diffID), and tags the image (or
/// keeps it untagged).
pub fn import(
    store: &Store,
    reader: impl Read,
    reference: Option<&Reference>,
    opts: &ImportOptions,
) -> Result<ResolvedImage> {
    let _guard = store.write_guard()?;
    let mut data = Decompressor::new(reader).map_err(Error::io("read", &opts.source))?;
    let mut first = vec![0u8; 512];
    let n = read_full(&mut data, &mut first).map_err(Error::io("read", &opts.source))?;
    first.truncate(n);
    if !looks_like_tar(&first) {
        return Err(Error::InvalidImage {
            what: opts.source.clone(),
            reason: "not a tar archive (plain, gzip or zstd)".into(),
        });
    }
    let (layer, layer_size) = store.write_blob(&mut Cursor::new(first).chain(data), None)?;
    let created = match opts.created {
        Some(secs) => std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64),
        None => std::time::SystemTime::now(),
    };
    let created = humantime::format_rfc3339_seconds(created).to_string();
    let platform = opts.platform.clone().unwrap_or_else(host_platform);
    let mut parts = platform.splitn(3, '/');
    let (os, arch, variant) = (parts.next(), parts.next(), parts.next());
    let (Some(os), Some(arch)) = (os.filter(|o| !o.is_empty()), arch.filter(|a| !a.is_empty()))
    else {
        return Err(Error::InvalidImage {
            what: opts.source.clone(),
            reason: format!("--platform {platform}: write OS/ARCH[/VARIANT]"),
        });
    };
    let comment = opts.message.as_deref().unwrap_or("Imported from tarball");
    let mut config = json!({
        "architecture": arch,
        "os": os,
        "created": created,
        "config": opts.config,
        "rootfs": { "type": "layers", "diff_ids": [layer.to_string()] },
        "history": [{ "created": created, "created_by": format!("kiln import {}", opts.source), "comment": comment }],
    });
    if let Some(v) = variant {
        config["variant"] = json!(v);
    }
    let config_bytes = serde_json::to_vec(&config).map_err(Error::json("config"))?;
    let config_digest = store.write_blob_bytes(&config_bytes)?;
    let desc = store.write_manifest(
        Descriptor::new(
            MediaType::ImageConfig,
            config_bytes.len() as u64,
            config_digest,
        ),
        vec![Descriptor::new(MediaType::ImageLayer, layer_size, layer)],
    )?;
    match reference {
        Some(r) => store.tag(r, &desc)?,
        None => store.keep_untagged(&desc)?,
    }
    store.read_image(&desc, &store.records()?)
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// A first block with a valid header checksum, or an empty archive (zero blocks).
fn looks_like_tar(block: &[u8]) -> bool {
    if block.len() < 512 {
        return false;
    }
    if block.iter().all(|&b| b == 0) {
        return true;
    }
    let header = tar::Header::from_byte_slice(block);
    let stored = header.cksum().ok();
    let computed: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                b' ' as u32
            } else {
                b as u32
            }
        })
        .sum();
    stored == Some(computed)
}
