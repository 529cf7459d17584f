//! The spec's root and mounts turned into a plan of system calls, before fork: every
//! path a C string, every option a flag, so the sandbox allocates nothing.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use nix::libc::c_ulong;
use nix::mount::MsFlags;
use oci_spec::runtime::Spec;

use crate::error::Error;
use crate::in_root::{InRoot, Leaf};
use crate::spec::{Rootfs, Snapshotter};

/// `mount_setattr(2)`'s attribute bits (linux/mount.h).
pub(crate) const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub(crate) const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub(crate) const MOUNT_ATTR_NODEV: u64 = 0x4;
pub(crate) const MOUNT_ATTR_NOEXEC: u64 = 0x8;

/// The device nodes every sandbox gets (runc's and Docker's default set), bound from the
/// host's: the only nodes that can be opened, since every other mount is `nodev`.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];
const DEV_LINKS: [(&str, &str); 5] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
];

pub(crate) fn cstring(path: &Path) -> Result<CString, Error> {
    CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| Error::Path {
        path: path.to_path_buf(),
    })
}

fn text(s: &str) -> Result<CString, Error> {
    cstring(Path::new(s))
}

pub(crate) enum Kind {
    /// A bind mount of a host path, then `attrs` set (recursively for `rbind`).
    Bind {
        source: CString,
        recursive: bool,
        attrs: u64,
    },
    /// A new filesystem (proc, tmpfs, devpts, mqueue, sysfs, overlay).
    Fs {
        fstype: CString,
        source: CString,
        flags: c_ulong,
        data: Option<CString>,
        /// sysfs cannot be mounted afresh outside a network namespace of the sandbox's
        /// own: then the host's is bound, read-only, with all its submounts.
        host_fallback: Option<CString>,
    },
}

pub(crate) struct Planned {
    pub target: InRoot,
    pub leaf: Leaf,
    pub kind: Kind,
}

pub(crate) struct RootPlan {
    pub merged: CString,
    /// overlayfs' options for the root, or `None` for the copying snapshotter's tree.
    pub overlay: Option<CString>,
    pub readonly: bool,
    pub mounts: Vec<Planned>,
    pub devices: Vec<(InRoot, CString)>,
    pub dev: InRoot,
    pub dev_links: Vec<(CString, CString)>,
    pub masked: Vec<InRoot>,
    pub readonly_paths: Vec<InRoot>,
    pub dev_null: CString,
    /// `linux.sysctl`: each `/proc/sys` file (under the root, before it is entered) and
    /// the value written to it.
    pub sysctls: Vec<(CString, CString)>,
}

/// The flags, mount attributes and filesystem data of the spec's mount options.
fn options(options: &[String]) -> (MsFlags, u64, Vec<String>) {
    let mut flags = MsFlags::empty();
    let mut attrs = 0;
    let mut data = Vec::new();
    for o in options {
        match o.as_str() {
            "ro" => {
                flags |= MsFlags::MS_RDONLY;
                attrs |= MOUNT_ATTR_RDONLY;
            }
            "nosuid" => {
                flags |= MsFlags::MS_NOSUID;
                attrs |= MOUNT_ATTR_NOSUID;
            }
            "nodev" => {
                flags |= MsFlags::MS_NODEV;
                attrs |= MOUNT_ATTR_NODEV;
            }
            "noexec" => {
                flags |= MsFlags::MS_NOEXEC;
                attrs |= MOUNT_ATTR_NOEXEC;
            }
            "bind" => flags |= MsFlags::MS_BIND,
            "rbind" => flags |= MsFlags::MS_BIND | MsFlags::MS_REC,
            "strictatime" => flags |= MsFlags::MS_STRICTATIME,
            "relatime" => flags |= MsFlags::MS_RELATIME,
            "noatime" => flags |= MsFlags::MS_NOATIME,
            "sync" => flags |= MsFlags::MS_SYNCHRONOUS,
            // Propagation: the sandbox's mounts are all private to it.
            "rw" | "private" | "rprivate" | "slave" | "rslave" | "shared" | "rshared" => {}
            other => data.push(other.to_string()),
        }
    }
    (flags, attrs, data)
}

impl RootPlan {
    /// Plans the root of `spec` made from `rootfs`. With the copying snapshotter, the
    /// overlay mounts of the spec are made here, as copies, before the sandbox starts.
    pub(crate) fn new(spec: &Spec, rootfs: &Rootfs) -> Result<Self, Error> {
        let overlay = match rootfs.snapshotter {
            Snapshotter::Overlay => Some(overlay_data(&rootfs.lower, &rootfs.upper, &rootfs.work)?),
            Snapshotter::Copy | Snapshotter::Made => None,
        };
        let mut mounts = Vec::new();
        for m in spec.mounts().iter().flatten() {
            let destination = m.destination().clone();
            let fstype = m.typ().clone().unwrap_or_else(|| "bind".into());
            let (mut flags, mut attrs, data) = options(m.options().as_deref().unwrap_or(&[]));
            let source = m.source().clone().unwrap_or_else(|| PathBuf::from(&fstype));
            let is_bind = fstype == "bind" || flags.contains(MsFlags::MS_BIND);
            // Device nodes can be opened only through binds of the host's /dev (the
            // standard set, or all of it for a privileged step) and devpts.
            let device_source = is_bind && source.starts_with("/dev");
            if !device_source && fstype != "devpts" {
                flags |= MsFlags::MS_NODEV;
                attrs |= MOUNT_ATTR_NODEV;
            }
            let kind = if is_bind {
                Kind::Bind {
                    source: cstring(&source)?,
                    recursive: flags.contains(MsFlags::MS_REC),
                    attrs,
                }
            } else if fstype == "overlay" && rootfs.snapshotter == Snapshotter::Copy {
                // Without overlayfs: the lower directories copied into the upper one,
                // which is bound; its changes are thrown away with it, as an overlay's.
                let (lower, upper) = overlay_dirs(&data).ok_or_else(|| Error::Mount {
                    destination: destination.clone(),
                    reason: "an overlay mount needs lowerdir= and upperdir=".into(),
                })?;
                crate::copy_root::merge_layers(&lower, &upper, false).map_err(|e| Error::Io {
                    op: "copy the layers into",
                    path: upper.clone(),
                    source: e,
                })?;
                Kind::Bind {
                    source: cstring(&upper)?,
                    recursive: false,
                    attrs,
                }
            } else {
                Kind::Fs {
                    fstype: text(&fstype)?,
                    source: cstring(&source)?,
                    flags: flags.bits(),
                    data: (!data.is_empty())
                        .then(|| text(&data.join(",")))
                        .transpose()?,
                    host_fallback: match fstype.as_str() {
                        "sysfs" => Some(text("/sys")?),
                        // A cgroup mount (runc's spec form) is refused beside a host's
                        // v1 hierarchies: the host's tree, read-only, as with sysfs.
                        "cgroup" | "cgroup2" => Some(text("/sys/fs/cgroup")?),
                        _ => None,
                    },
                }
            };
            let leaf = match &kind {
                Kind::Bind { .. }
                    if !std::fs::metadata(&source)
                        .map(|m| m.is_dir())
                        .map_err(|e| Error::Io {
                            op: "read the mount source",
                            path: source.clone(),
                            source: e,
                        })? =>
                {
                    Leaf::File
                }
                _ => Leaf::Dir,
            };
            mounts.push(Planned {
                target: InRoot::new(&destination)?,
                leaf,
                kind,
            });
        }
        let linux = spec.linux().as_ref();
        let in_root_all = |paths: Option<&Vec<String>>| -> Result<Vec<InRoot>, Error> {
            paths
                .into_iter()
                .flatten()
                .map(|p| InRoot::new(Path::new(p)))
                .collect()
        };
        Ok(Self {
            merged: cstring(&rootfs.merged)?,
            overlay,
            readonly: spec
                .root()
                .as_ref()
                .and_then(|r| r.readonly())
                .unwrap_or(false),
            mounts,
            devices: DEVICES
                .iter()
                .map(|d| {
                    let path = Path::new("/dev").join(d);
                    Ok((InRoot::new(&path)?, cstring(&path)?))
                })
                .collect::<Result<_, Error>>()?,
            dev: InRoot::new(Path::new("/dev"))?,
            dev_links: DEV_LINKS
                .iter()
                .map(|(name, target)| Ok((text(name)?, text(target)?)))
                .collect::<Result<_, Error>>()?,
            masked: in_root_all(linux.and_then(|l| l.masked_paths().as_ref()))?,
            readonly_paths: in_root_all(linux.and_then(|l| l.readonly_paths().as_ref()))?,
            dev_null: text("/dev/null")?,
            sysctls: linux
                .and_then(|l| l.sysctl().as_ref())
                .into_iter()
                .flatten()
                .map(|(key, value)| {
                    // Every dot a slash: no `..` can remain to climb out of /proc/sys.
                    let name = key.replace('.', "/");
                    let file = rootfs
                        .merged
                        .join("proc/sys")
                        .join(name.trim_start_matches('/'));
                    Ok((cstring(&file)?, text(value)?))
                })
                .collect::<Result<_, Error>>()?,
        })
    }
}

fn overlay_data(lower: &[PathBuf], upper: &Path, work: &Path) -> Result<CString, Error> {
    let lower: Vec<String> = lower.iter().map(|l| l.display().to_string()).collect();
    text(&format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    ))
}

/// `lowerdir=` (topmost first) and `upperdir=` of overlay mount data.
fn overlay_dirs(data: &[String]) -> Option<(Vec<PathBuf>, PathBuf)> {
    let value = |key: &str| data.iter().find_map(|d| d.strip_prefix(key));
    let lower = value("lowerdir=")?.split(':').map(PathBuf::from).collect();
    Some((lower, PathBuf::from(value("upperdir=")?)))
}

/// The mount-point stubs the sandbox will create: each destination (and parent) that no
/// layer has. Checked component by component without following symlinks; a destination
/// reached through a symlink of the image is made where the link leads and is left
/// there, as BuildKit leaves it.
pub(crate) fn stubs(spec: &Spec, rootfs: &Rootfs) -> Vec<PathBuf> {
    // A root made by the caller is the caller's to keep clean.
    if rootfs.snapshotter == Snapshotter::Made {
        return Vec::new();
    }
    let layers: Vec<&PathBuf> = rootfs.lower.iter().chain([&rootfs.upper]).collect();
    let exists = |rel: &Path| {
        layers.iter().any(|l| {
            let mut at = l.to_path_buf();
            let mut parts = rel.components().peekable();
            while let Some(p) = parts.next() {
                at.push(p);
                match std::fs::symlink_metadata(&at) {
                    Ok(m) if parts.peek().is_none() || m.is_dir() => {}
                    _ => return false,
                }
            }
            true
        })
    };
    let mut out: Vec<PathBuf> = Vec::new();
    let destinations = spec.mounts().iter().flatten().map(|m| m.destination());
    for dest in destinations {
        let mut path = PathBuf::new();
        for part in dest.components().skip(1) {
            path.push(part);
            if !exists(&path) && !out.iter().any(|o| o == &Path::new("/").join(&path)) {
                out.push(Path::new("/").join(&path));
            }
        }
    }
    out
}

/// Removes the stubs the sandbox left in `upper` (deepest first), if they are still
/// empty: a stub the process filled is a change of its own and stays. A stub reached
/// through a symlink the process made is not followed (it could lead to the host).
pub(crate) fn remove_stubs(upper: &Path, stubs: &[PathBuf]) {
    let mut sorted: Vec<&PathBuf> = stubs.iter().collect();
    sorted.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    'stubs: for stub in sorted {
        let rel = stub.strip_prefix("/").unwrap_or(stub);
        let mut path = upper.to_path_buf();
        let mut parts = rel.components().peekable();
        while let Some(part) = parts.next() {
            path.push(part);
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue 'stubs;
            };
            if parts.peek().is_some() && !meta.is_dir() {
                continue 'stubs;
            }
            if parts.peek().is_none() {
                if meta.is_dir() {
                    let _ = std::fs::remove_dir(&path);
                } else if meta.is_file() && meta.len() == 0 {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
    }
}
