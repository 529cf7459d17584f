//! The root filesystem of a sandbox: overlay, `/proc`, a minimal `/dev`, `/sys`, the
//! configured mounts, then `pivot_root`. Runs in the sandbox's own mount namespace.
//! Mount points that had to be created are stubs: [`stubs`] lists them beforehand so
//! they can be removed from the upper directory afterwards and never reach a layer.

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::spec::{MountKind, SandboxConfig, Snapshotter};

const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

fn errno(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

fn inside(root: &Path, dest: &Path) -> PathBuf {
    root.join(dest.strip_prefix("/").unwrap_or(dest))
}

/// Every path under the root that the sandbox will create as a mount point (and the
/// parents it needs) and that no lower layer and not the upper layer already has.
pub(crate) fn stubs(config: &SandboxConfig) -> Vec<PathBuf> {
    let mut wanted: Vec<PathBuf> = ["/proc", "/dev", "/sys"]
        .iter()
        .map(PathBuf::from)
        .collect();
    wanted.extend(config.mounts.iter().map(|m| m.destination.clone()));
    let exists = |rel: &Path| {
        let rel = rel.strip_prefix("/").unwrap_or(rel);
        config
            .root
            .lower
            .iter()
            .chain([&config.root.upper])
            .any(|l| fs::symlink_metadata(l.join(rel)).is_ok())
    };
    let mut out: Vec<PathBuf> = Vec::new();
    for dest in wanted {
        let mut path = PathBuf::from("/");
        for part in dest.components().skip(1) {
            path.push(part);
            if !exists(&path) && !out.contains(&path) {
                out.push(path.clone());
            }
        }
    }
    out
}

/// Removes the stubs the sandbox left in `upper` (deepest first), if they are still
/// empty: a stub the process filled is a change of its own and stays.
pub(crate) fn remove_stubs(upper: &Path, stubs: &[PathBuf]) {
    let mut sorted: Vec<&PathBuf> = stubs.iter().collect();
    sorted.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for stub in sorted {
        let path = inside(upper, stub);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => {
                let _ = fs::remove_dir(&path);
            }
            Ok(m) if m.is_file() && m.len() == 0 => {
                let _ = fs::remove_file(&path);
            }
            _ => {}
        }
    }
}

fn bind(source: &Path, target: &Path, readonly: bool) -> io::Result<()> {
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(errno)?;
    if readonly {
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC;
        mount(None::<&str>, target, None::<&str>, flags, None::<&str>).map_err(errno)?;
    }
    Ok(())
}

/// A mount point of the right kind for `source`: a directory, or an empty file.
fn mount_point(target: &Path, is_dir: bool) -> io::Result<()> {
    if is_dir {
        fs::create_dir_all(target)
    } else {
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)?;
        }
        if fs::symlink_metadata(target).is_err() {
            fs::File::create(target)?;
        }
        Ok(())
    }
}

/// Stops mount events propagating between this mount namespace and its peers, so what is
/// mounted here stays here.
fn make_mounts_private() -> io::Result<()> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(errno)
}

/// Moves the calling process into a mount namespace of its own: the mounts it makes
/// (a builder's views of stages) vanish when it exits, whatever way it exits.
pub fn isolate_mounts() -> io::Result<()> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(io::Error::from)?;
    make_mounts_private()
}

fn overlay(lower: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> io::Result<()> {
    let lower: Vec<String> = lower.iter().map(|l| l.display().to_string()).collect();
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    );
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    )
    .map_err(errno)
}

/// Builds the root and moves into it. Runs as the sandbox's PID 1, before the program.
pub(crate) fn enter_root(config: &SandboxConfig) -> io::Result<()> {
    let root = &config.root.merged;
    make_mounts_private()?;
    match config.root.snapshotter {
        Snapshotter::Overlay => overlay(
            &config.root.lower,
            &config.root.upper,
            &config.root.work,
            root,
        )?,
        // pivot_root needs a mount point.
        Snapshotter::Copy => bind(root, root, false)?,
    }

    let proc_dir = root.join("proc");
    fs::create_dir_all(&proc_dir)?;
    let hardened = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(
        Some("proc"),
        &proc_dir,
        Some("proc"),
        hardened,
        None::<&str>,
    )
    .map_err(errno)?;

    let dev = root.join("dev");
    fs::create_dir_all(&dev)?;
    mount(
        Some("tmpfs"),
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID,
        Some("mode=755,size=65536k"),
    )
    .map_err(errno)?;
    for name in DEVICES {
        let target = dev.join(name);
        fs::File::create(&target)?;
        bind(&Path::new("/dev").join(name), &target, false)?;
    }
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        symlink(target, dev.join(link))?;
    }
    fs::create_dir(dev.join("shm"))?;
    mount(
        Some("shm"),
        &dev.join("shm"),
        Some("tmpfs"),
        hardened,
        Some("mode=1777,size=65536k"),
    )
    .map_err(errno)?;
    fs::create_dir(dev.join("pts"))?;
    mount(
        Some("devpts"),
        &dev.join("pts"),
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )
    .map_err(errno)?;

    let sys = root.join("sys");
    fs::create_dir_all(&sys)?;
    let sysfs = mount(
        Some("sysfs"),
        &sys,
        Some("sysfs"),
        hardened | MsFlags::MS_RDONLY,
        None::<&str>,
    );
    if sysfs.is_err() {
        // Without a network namespace of its own, sysfs cannot be mounted afresh.
        bind(Path::new("/sys"), &sys, true)?;
    }

    for m in &config.mounts {
        let target = inside(root, &m.destination);
        match &m.kind {
            MountKind::Bind { source, readonly } => {
                mount_point(&target, fs::metadata(source)?.is_dir())?;
                bind(source, &target, *readonly)?;
            }
            MountKind::Overlay { lower, upper, work } => {
                fs::create_dir_all(&target)?;
                match config.root.snapshotter {
                    Snapshotter::Overlay => overlay(lower, upper, work, &target)?,
                    Snapshotter::Copy => {
                        crate::copy_root::merge_layers(lower, upper, false)?;
                        bind(upper, &target, false)?;
                    }
                }
            }
            MountKind::Tmpfs { size } => {
                fs::create_dir_all(&target)?;
                let options = size.map(|s| format!("size={s}"));
                mount(
                    Some("tmpfs"),
                    &target,
                    Some("tmpfs"),
                    MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                    options.as_deref(),
                )
                .map_err(errno)?;
            }
        }
    }

    // pivot_root(".", ".") stacks the old root on the new one; detaching it leaves only
    // the new root, without a directory for the old one (which would land in the layer).
    std::env::set_current_dir(root)?;
    nix::unistd::pivot_root(".", ".").map_err(errno)?;
    umount2(".", MntFlags::MNT_DETACH).map_err(errno)?;
    std::env::set_current_dir("/")
}
