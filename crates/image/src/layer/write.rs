//! Directory (or changes) → layer tar, deterministic: entries in sorted order, numeric
//! owners without names, no atime/ctime, mtimes clamped to `SOURCE_DATE_EPOCH`, PAX
//! records for long names and xattrs; hard links, symlinks, devices and fifos kept.
//! One pass yields the diffID (of the tar) and the digest (of the compressed blob).

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::{Compression, Compressor};
use crate::digest::{Digest, Hasher, HashingWriter};
use crate::error::{Error, Result};

/// How to write a layer.
#[derive(Debug, Clone, Copy)]
pub struct LayerOptions {
    /// The blob's compression (`None` on the build path).
    pub compression: Compression,
    /// Clamp every mtime to at most this (seconds since the epoch, the caller's
    /// `SOURCE_DATE_EPOCH`), for reproducible layers.
    pub source_date_epoch: Option<i64>,
}

/// What a written layer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// sha256 of the blob as written (equal to `diff_id` when uncompressed).
    pub digest: Digest,
    /// The blob's size in bytes.
    pub size: u64,
    /// The blob's media type (OCI layer, with its compression).
    pub media_type: &'static str,
}

/// One change of a diff layer, relative to the layer's root.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    /// Added or changed: written from the directory as it is now.
    Upsert(PathBuf),
    /// Removed: written as a `.wh.NAME` whiteout.
    Delete(PathBuf),
    /// A directory whose lower contents are all hidden: `.wh..wh..opq`.
    Opaque(PathBuf),
}

/// Writes every entry under `dir` (not `dir` itself) as a layer into `out`.
pub fn write_dir<W: Write + Send + 'static>(
    dir: &Path,
    opts: LayerOptions,
    out: W,
) -> Result<(LayerInfo, W)> {
    let mut paths = Vec::new();
    for entry in walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name() {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(dir).to_path_buf();
            Error::Io {
                op: "walk",
                path,
                source: e.into(),
            }
        })?;
        paths.push(Change::Upsert(
            entry
                .path()
                .strip_prefix(dir)
                .expect("under dir")
                .to_path_buf(),
        ));
    }
    write_changes(dir, &paths, opts, out)
}

/// Regular files of a layer's directory whose data is elsewhere, by path relative to the
/// directory: each is a placeholder with the file's size, owner, mode and time (a sparse
/// file), and its data is read from the path it maps to as the layer is written. A COPY
/// of large files so reads them once and writes them once, into the layer alone.
pub type Placeholders = HashMap<PathBuf, PathBuf>;

/// Writes `changes` (paths relative to `root`) as a layer. Changes are sorted first, so
/// their order does not matter.
pub fn write_changes<W: Write + Send + 'static>(
    root: &Path,
    changes: &[Change],
    opts: LayerOptions,
    out: W,
) -> Result<(LayerInfo, W)> {
    write_changes_with(root, changes, &Placeholders::new(), opts, out)
}

/// [`write_changes`], with the data of the regular files `placeholders` names read from
/// where it maps them. A file whose source holds less than its placeholder's size is an
/// error; one that grew gives the placeholder's size.
pub fn write_changes_with<W: Write + Send + 'static>(
    root: &Path,
    changes: &[Change],
    placeholders: &Placeholders,
    opts: LayerOptions,
    out: W,
) -> Result<(LayerInfo, W)> {
    let mut sorted: Vec<&Change> = changes.iter().collect();
    sorted.sort_by(|a, b| change_path(a).cmp(change_path(b)).then(a.cmp(b)));
    // An uncompressed layer's digest is its diffID: its bytes are hashed once.
    let compressed = Output {
        inner: out,
        hasher: (opts.compression != Compression::None).then(Hasher::sha256),
        written: 0,
    };
    let compressor = Compressor::new(opts.compression, compressed)
        .map_err(Error::io("start compression", root))?;
    let tar_out = HashingWriter::new(compressor, Hasher::sha256());
    let mut writer = TarWriter {
        builder: tar::Builder::new(tar_out),
        root,
        placeholders,
        opts,
        links: HashMap::new(),
        buf: Vec::new(),
    };
    for change in sorted {
        match change {
            Change::Upsert(rel) => writer.entry(rel)?,
            Change::Delete(rel) => writer.whiteout(rel, false)?,
            Change::Opaque(rel) => writer.whiteout(rel, true)?,
        }
    }
    let tar_out = writer
        .builder
        .into_inner()
        .map_err(Error::io("finish tar", root))?;
    let (compressor, diff_id, _) = tar_out.finish();
    let compressed = compressor
        .finish()
        .map_err(Error::io("finish compression", root))?;
    let Output {
        inner: out,
        hasher,
        written: size,
    } = compressed;
    let info = LayerInfo {
        digest: hasher.map_or_else(|| diff_id.clone(), Hasher::finish),
        diff_id,
        size,
        media_type: opts.compression.media_type(),
    };
    Ok((info, out))
}

/// The layer's blob as it is written: counted, and hashed when it is not the tar itself.
struct Output<W> {
    inner: W,
    hasher: Option<Hasher>,
    written: u64,
}

impl<W: Write> Write for Output<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn change_path(c: &Change) -> &Path {
    match c {
        Change::Upsert(p) | Change::Delete(p) | Change::Opaque(p) => p,
    }
}

struct TarWriter<'a, W: Write> {
    builder: tar::Builder<W>,
    root: &'a Path,
    placeholders: &'a Placeholders,
    opts: LayerOptions,
    /// (device, inode) → the first path written for a multiply-linked file.
    links: HashMap<(u64, u64), String>,
    /// For copying files' data, allocated at the first file.
    buf: Vec<u8>,
}

/// Copies all of `from` to `to` through `buf` (grown to a megabyte on first use).
fn copy_in_pieces(
    from: &mut impl io::Read,
    to: &mut impl Write,
    buf: &mut Vec<u8>,
) -> io::Result<()> {
    if buf.is_empty() {
        buf.resize(1 << 20, 0);
    }
    loop {
        match from.read(buf) {
            Ok(0) => return Ok(()),
            Ok(n) => to.write_all(&buf[..n])?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

impl<W: Write> TarWriter<'_, W> {
    fn mtime(&self, meta: &Metadata) -> u64 {
        let t = meta.mtime().max(0);
        self.opts.source_date_epoch.map_or(t, |e| t.min(e.max(0))) as u64
    }

    fn entry(&mut self, rel: &Path) -> Result<()> {
        let full = self.root.join(rel);
        let meta = std::fs::symlink_metadata(&full).map_err(Error::io("stat", &full))?;
        let ft = meta.file_type();
        let mut name = tar_name(rel);
        let mut header = tar::Header::new_ustar();
        header.set_mode(meta.mode() & 0o7777);
        header.set_uid(meta.uid() as u64);
        header.set_gid(meta.gid() as u64);
        header.set_mtime(self.mtime(&meta));
        header.set_size(0);
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        let mut link_target = None;
        if ft.is_dir() {
            name.push('/');
            header.set_entry_type(tar::EntryType::Directory);
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&full).map_err(Error::io("read link", &full))?;
            header.set_entry_type(tar::EntryType::Symlink);
            link_target = Some(target.to_string_lossy().into_owned());
        } else if ft.is_file()
            && meta.nlink() > 1
            && self.links.contains_key(&(meta.dev(), meta.ino()))
        {
            header.set_entry_type(tar::EntryType::Link);
            link_target = self.links.get(&(meta.dev(), meta.ino())).cloned();
        } else if ft.is_file() {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(meta.len());
            if meta.nlink() > 1 {
                self.links.insert((meta.dev(), meta.ino()), name.clone());
            }
        } else if ft.is_char_device() || ft.is_block_device() {
            header.set_entry_type(if ft.is_char_device() {
                tar::EntryType::Char
            } else {
                tar::EntryType::Block
            });
            let rdev = meta.rdev();
            header
                .set_device_major(nix::sys::stat::major(rdev) as u32)
                .map_err(Error::io("device number", &full))?;
            header
                .set_device_minor(nix::sys::stat::minor(rdev) as u32)
                .map_err(Error::io("device number", &full))?;
        } else if ft.is_fifo() {
            header.set_entry_type(tar::EntryType::Fifo);
        } else {
            // Sockets cannot be archived; tar and docker skip them too.
            return Ok(());
        }
        set_name(&mut header, &name, &mut pax, "path");
        if let Some(target) = &link_target {
            if target.len() > 100 || !target.is_ascii() || header.set_link_name(target).is_err() {
                pax.push(("linkpath".into(), target.clone().into_bytes()));
            }
        }
        for (key, value) in xattrs(&full)? {
            pax.push((format!("SCHILY.xattr.{key}"), value));
        }
        let placeholders = self.placeholders;
        let data = (ft.is_file() && header_size(&link_target, &meta) > 0).then(|| {
            placeholders
                .get(rel)
                .map_or(full.as_path(), PathBuf::as_path)
        });
        self.append(header, pax, &full, data)
    }

    /// Appends an entry; `data` is the file to read a regular file's data from (the
    /// entry's own, or the source of a placeholder).
    fn append(
        &mut self,
        mut header: tar::Header,
        pax: Vec<(String, Vec<u8>)>,
        full: &Path,
        data: Option<&Path>,
    ) -> Result<()> {
        if !pax.is_empty() {
            self.builder
                .append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .map_err(Error::io("write tar", full))?;
        }
        header.set_cksum();
        if let Some(data) = data {
            let file = File::open(data).map_err(Error::io("open", data))?;
            let expected = header.size().unwrap_or(0);
            // A file that changes size while it is read would corrupt the tar; refuse.
            let mut limited = io::Read::take(file, expected);
            // The tar crate copies through an 8 KiB buffer; a large file goes in
            // megabyte reads (a 1 GiB file: 1,024 reads instead of 131,072).
            let out = self.builder.get_mut();
            out.write_all(header.as_bytes())
                .map_err(Error::io("write tar", full))?;
            copy_in_pieces(&mut limited, out, &mut self.buf)
                .map_err(Error::io("write tar", data))?;
            if limited.limit() != 0 {
                return Err(Error::Conflict(format!(
                    "{} shrank while it was being archived",
                    data.display()
                )));
            }
            let padding = (512 - expected % 512) % 512;
            out.write_all(&[0u8; 512][..padding as usize])
                .map_err(Error::io("write tar", full))?;
        } else {
            self.builder
                .append(&header, io::empty())
                .map_err(Error::io("write tar", full))?;
        }
        Ok(())
    }

    fn whiteout(&mut self, rel: &Path, opaque: bool) -> Result<()> {
        let (dir, base) = (
            rel.parent().unwrap_or(Path::new("")),
            rel.file_name().unwrap_or_default().to_string_lossy(),
        );
        let wh = if opaque {
            rel.join(".wh..wh..opq")
        } else {
            dir.join(format!(".wh.{base}"))
        };
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_size(0);
        header.set_mtime(self.opts.source_date_epoch.map_or(0, |e| e.max(0) as u64));
        let mut pax = Vec::new();
        set_name(&mut header, &tar_name(&wh), &mut pax, "path");
        self.append(header, pax, &self.root.join(rel), None)
    }
}

fn header_size(link_target: &Option<String>, meta: &Metadata) -> u64 {
    if link_target.is_some() {
        0
    } else {
        meta.len()
    }
}

fn tar_name(rel: &Path) -> String {
    rel.to_string_lossy().into_owned()
}

/// Sets the ustar name, or a PAX record when it does not fit or is not ASCII.
fn set_name(header: &mut tar::Header, name: &str, pax: &mut Vec<(String, Vec<u8>)>, key: &str) {
    let fits = name.is_ascii() && header.set_path(name).is_ok();
    if !fits {
        pax.insert(0, (key.to_string(), name.as_bytes().to_vec()));
        let short: String = name.chars().filter(char::is_ascii).take(99).collect();
        let _ = header.set_path(&short);
    }
}

/// Extended attributes worth keeping, sorted by name. SELinux labels and overlayfs'
/// own attributes describe the host, not the image, and would make layers differ by
/// machine.
fn xattrs(path: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let names = match xattr::list(path) {
        Ok(names) => names,
        Err(e) if e.raw_os_error() == Some(nix::libc::ENOTSUP) => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error::Io {
                op: "list xattrs",
                path: path.to_path_buf(),
                source: e,
            })
        }
    };
    let mut out = Vec::new();
    for name in names {
        let name = name.to_string_lossy().into_owned();
        if name == "security.selinux"
            || name.starts_with("trusted.overlay.")
            || name.starts_with("user.overlay.")
        {
            continue;
        }
        if let Some(value) = xattr::get(path, &name).map_err(Error::io("read xattr", path))? {
            out.push((name, value));
        }
    }
    out.sort();
    Ok(out)
}
