//! A sandbox's control group, from its spec's `linux.cgroupsPath` and
//! `linux.resources`, made and limited with youki's `libcgroups` (cgroups v1, hybrid and
//! v2, as it finds the machine). The sandbox's middle process joins it before it forks
//! PID 1, so nothing the container runs ever escapes it.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use libcgroups::common::{
    create_cgroup_manager, AnyCgroupManager, CgroupConfig, CgroupManager, ControllerOpt,
};
use oci_spec::runtime::{LinuxResources, Spec};

use crate::error::Error;

/// A container's cgroup, in every hierarchy (v1) or the one (v2): made with the spec's
/// limits before the process starts, joined by it, removed when it is done.
pub struct Cgroup {
    /// libcgroups' manager, when there are limits to set.
    manager: Option<AnyCgroupManager>,
    /// The files a process writes `0` to to move itself in ([`join_file`]), one per
    /// hierarchy.
    procs: Vec<CString>,
    dirs: Vec<PathBuf>,
}

/// The file of cgroup directory `dir` through which a single-threaded process moves
/// itself in by writing `0`: v1's `tasks`, which moves the calling thread without the
/// kernel's global `cgroup_threadgroup_rwsem` — a `cgroup.procs` write takes it, and its
/// first writer after a quiet spell waits for an RCU grace period (3–27 ms on these
/// machines, the larger part of a container's start) — else v2's `cgroup.procs`.
fn join_file(dir: &Path) -> Option<CString> {
    let tasks = dir.join("tasks");
    let file = if tasks.exists() {
        tasks
    } else {
        dir.join("cgroup.procs")
    };
    CString::new(file.as_os_str().as_bytes()).ok()
}

fn failed(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Cgroup {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// The cgroup hierarchies kiln uses (from `/proc/self/mountinfo`): their mount points,
/// and whether each is v2's. On a hybrid host (v1 controllers, and a v2 hierarchy with
/// none, as systemd mounts it at `unified/`), the v1 ones alone: the v2 one would limit
/// nothing, and moving into it costs an RCU grace period (7–15 ms here) that v1's `tasks`
/// files do not ([`join_file`]).
fn hierarchies() -> Vec<(PathBuf, bool)> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let all: Vec<(PathBuf, bool)> = mountinfo
        .lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let fstype = after.split_whitespace().next()?;
            if fstype != "cgroup" && fstype != "cgroup2" {
                return None;
            }
            let mount_point = before.split_whitespace().nth(4)?;
            Some((PathBuf::from(mount_point), fstype == "cgroup2"))
        })
        .collect();
    let hybrid = all.iter().any(|(_, v2)| !v2);
    all.into_iter().filter(|(_, v2)| !(hybrid && *v2)).collect()
}

/// The directories of cgroup `path` in every hierarchy that has it.
fn dirs_of(path: &Path) -> Vec<PathBuf> {
    let rel = path.strip_prefix("/").unwrap_or(path);
    hierarchies()
        .into_iter()
        .map(|(mount, _)| mount.join(rel))
        .filter(|dir| dir.join("cgroup.procs").exists())
        .collect()
}

/// Makes cgroup `path` in every hierarchy (libcgroups limits a cgroup that exists);
/// under v2, with the memory, cpu and pids controllers enabled on the way down.
fn make_dirs(path: &Path) -> Result<(), Error> {
    let rel = path.strip_prefix("/").unwrap_or(path);
    for (mount, v2) in hierarchies() {
        if v2 {
            let available =
                std::fs::read_to_string(mount.join("cgroup.controllers")).unwrap_or_default();
            let wanted: Vec<String> = ["memory", "cpu", "pids"]
                .iter()
                .filter(|c| available.split_whitespace().any(|a| a == **c))
                .map(|c| format!("+{c}"))
                .collect();
            let mut at = mount.clone();
            for part in rel.parent().into_iter().flat_map(|p| p.components()) {
                if !wanted.is_empty() {
                    let _ = std::fs::write(at.join("cgroup.subtree_control"), wanted.join(" "));
                }
                at.push(part);
                std::fs::create_dir_all(&at).map_err(|e| failed(&at, e))?;
            }
            if !wanted.is_empty() {
                let _ = std::fs::write(at.join("cgroup.subtree_control"), wanted.join(" "));
            }
        }
        let mut at = mount.clone();
        for part in rel.components() {
            let parent = at.clone();
            at.push(part);
            std::fs::create_dir_all(&at).map_err(|e| failed(&at, e))?;
            // v1's cpuset starts a cgroup with no CPU and no memory node, where no task
            // may go (ENOSPC): take the parent's, as runc does.
            for file in ["cpuset.cpus", "cpuset.mems"] {
                let here = at.join(file);
                if std::fs::read_to_string(&here).is_ok_and(|v| v.trim().is_empty()) {
                    let value = std::fs::read_to_string(parent.join(file)).unwrap_or_default();
                    std::fs::write(&here, value.trim()).map_err(|e| failed(&here, e))?;
                }
            }
        }
    }
    Ok(())
}

impl Cgroup {
    /// The cgroup `spec` asks for, made with its limits; None when it names none.
    pub(crate) fn create(spec: &Spec) -> Result<Option<Cgroup>, Error> {
        let Some(linux) = spec.linux().as_ref() else {
            return Ok(None);
        };
        let Some(path) = linux.cgroups_path().clone() else {
            return Ok(None);
        };
        let resources = linux.resources().clone().unwrap_or_default();
        make_dirs(&path)?;
        // Without limits the directories are the whole cgroup (a container's processes
        // are still counted, for stats and top): libcgroups' set-up costs ~2 ms a start.
        let manager = if resources == LinuxResources::default() {
            None
        } else {
            Some(
                create_cgroup_manager(CgroupConfig {
                    cgroup_path: path.clone(),
                    systemd_cgroup: false,
                    container_name: path.display().to_string(),
                })
                .map_err(|e| failed(&path, e))?,
            )
        };
        let applied = match &manager {
            Some(m) => m
                .apply(&ControllerOpt {
                    resources: &resources,
                    disable_oom_killer: false,
                    oom_score_adj: None,
                    freezer_state: None,
                })
                .map_err(|e| {
                    failed(
                        &path,
                        format!("{e} (a limit below what the kernel accepts?)"),
                    )
                }),
            None => Ok(()),
        };
        let cgroup = Cgroup {
            manager,
            procs: Vec::new(),
            dirs: Vec::new(),
        }
        .with_dirs(&path);
        if let Err(e) = applied {
            cgroup.remove();
            return Err(e);
        }
        Ok(Some(cgroup))
    }

    fn with_dirs(mut self, path: &Path) -> Cgroup {
        self.dirs = dirs_of(path);
        self.procs = self.dirs.iter().filter_map(|d| join_file(d)).collect();
        self
    }

    /// The [`join_file`]s of an existing cgroup (for a process that joins a running
    /// container's).
    pub(crate) fn procs_of(spec: &Spec) -> Vec<CString> {
        let Some(path) = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone()) else {
            return Vec::new();
        };
        dirs_of(&path).iter().filter_map(|d| join_file(d)).collect()
    }

    pub(crate) fn procs(&self) -> &[CString] {
        &self.procs
    }

    /// The [`join_file`]s of the cgroups above it: where the sandbox's middle process
    /// goes back once PID 1 is forked, so the cgroup counts the container's processes
    /// alone.
    pub(crate) fn parent_procs(&self) -> Vec<CString> {
        self.dirs
            .iter()
            .filter_map(|d| d.parent())
            .filter_map(join_file)
            .collect()
    }

    /// Whether the kernel's OOM killer killed a process of the cgroup (v1's
    /// `memory.oom_control`, v2's `memory.events`).
    pub fn oom_killed(&self) -> bool {
        self.dirs.iter().any(|d| {
            ["memory.oom_control", "memory.events"].iter().any(|f| {
                std::fs::read_to_string(d.join(f)).is_ok_and(|text| {
                    text.lines().any(|l| {
                        l.strip_prefix("oom_kill ")
                            .and_then(|n| n.trim().parse::<u64>().ok())
                            .is_some_and(|n| n > 0)
                    })
                })
            })
        })
    }

    /// Removes the cgroup in every hierarchy (its processes are gone).
    pub(crate) fn remove(&self) {
        if let Some(m) = &self.manager {
            let _ = m.remove();
        }
        for dir in &self.dirs {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Freezes (`true`) or thaws every process of cgroup `path` — v1's freezer, v2's
/// `cgroup.freeze` — and waits (up to 10 s) until the kernel says it is done, as
/// `docker pause` does and `docker commit` does around its read of a container's layer.
pub fn freeze(path: &Path, frozen: bool) -> Result<(), Error> {
    let dirs = dirs_of(path);
    // v1: `freezer.state` is written and read back; v2: `cgroup.freeze` is written and
    // `cgroup.events` says `frozen 1` (or 0).
    let (control, value, status, want) =
        if let Some(d) = dirs.iter().find(|d| d.join("freezer.state").exists()) {
            let state = if frozen { "FROZEN" } else { "THAWED" };
            let file = d.join("freezer.state");
            (file.clone(), state, file, state.to_string())
        } else if let Some(d) = dirs.iter().find(|d| d.join("cgroup.freeze").exists()) {
            (
                d.join("cgroup.freeze"),
                if frozen { "1" } else { "0" },
                d.join("cgroup.events"),
                format!("frozen {}", u8::from(frozen)),
            )
        } else {
            return Err(failed(path, "no freezer for this cgroup"));
        };
    std::fs::write(&control, value).map_err(|e| failed(&control, e))?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let now = std::fs::read_to_string(&status).map_err(|e| failed(&status, e))?;
        if now.lines().any(|l| l.trim() == want) {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(failed(
                &status,
                format!("still {:?} after 10 s", now.trim()),
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Removes cgroup `path` wherever it is left (its sandbox's supervisor was killed before
/// it could); a cgroup still in use stays.
pub fn remove_path(path: &Path) {
    for dir in dirs_of(path) {
        let _ = std::fs::remove_dir(dir);
    }
}

/// What a cgroup uses now, read from its files (v1's or v2's names): CPU time in
/// nanoseconds, memory in bytes (and its limit, None when unlimited), processes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// CPU time used, in nanoseconds.
    pub cpu_ns: u64,
    /// Memory used, in bytes.
    pub memory: u64,
    /// The memory limit, in bytes; None when unlimited.
    pub memory_limit: Option<u64>,
    /// Processes in it.
    pub pids: u64,
}

/// What the cgroup `path` (relative to the hierarchies' roots) uses now; zeros for what
/// cannot be read.
pub fn usage(path: &Path) -> Usage {
    let mut u = Usage::default();
    let number = |dir: &Path, file: &str| -> Option<u64> {
        std::fs::read_to_string(dir.join(file))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    for dir in dirs_of(path) {
        if let Some(ns) = number(&dir, "cpuacct.usage") {
            u.cpu_ns = ns;
        }
        if let Ok(stat) = std::fs::read_to_string(dir.join("cpu.stat")) {
            if let Some(us) = stat
                .lines()
                .find_map(|l| l.strip_prefix("usage_usec "))
                .and_then(|v| v.trim().parse::<u64>().ok())
            {
                u.cpu_ns = us * 1000;
            }
        }
        if let Some(m) =
            number(&dir, "memory.usage_in_bytes").or_else(|| number(&dir, "memory.current"))
        {
            u.memory = m;
        }
        // v1 says "no limit" with a huge number, v2 with "max" (not a number).
        if let Some(l) =
            number(&dir, "memory.limit_in_bytes").or_else(|| number(&dir, "memory.max"))
        {
            u.memory_limit = (l < (1 << 62)).then_some(l);
        }
        if let Some(p) = number(&dir, "pids.current") {
            u.pids = p;
        }
    }
    u
}

/// The processes in cgroup `path` (host PIDs).
pub fn pids(path: &Path) -> Vec<u32> {
    let mut out: Vec<u32> = dirs_of(path)
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|text| {
            text.lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// `--memory`, `--memory-swap`, `--cpus`, `--cpu-shares`, `--pids-limit` as OCI
/// resources.
pub fn resources(
    memory: Option<i64>,
    memory_swap: Option<i64>,
    cpus: Option<f64>,
    cpu_shares: Option<u64>,
    pids: Option<i64>,
) -> LinuxResources {
    use oci_spec::runtime::{
        LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder,
    };
    let mut r = LinuxResourcesBuilder::default();
    if memory.is_some() || memory_swap.is_some() {
        let mut m = LinuxMemoryBuilder::default();
        if let Some(limit) = memory {
            m = m.limit(limit);
            // docker: without --memory-swap, as much swap as memory.
            m = m.swap(memory_swap.unwrap_or(limit * 2));
        } else if let Some(swap) = memory_swap {
            m = m.swap(swap);
        }
        r = r.memory(m.build().expect("memory limits"));
    }
    if cpus.is_some() || cpu_shares.is_some() {
        let mut c = LinuxCpuBuilder::default();
        if let Some(cpus) = cpus {
            let period = 100_000u64;
            c = c.period(period).quota((cpus * period as f64) as i64);
        }
        if let Some(shares) = cpu_shares {
            c = c.shares(shares);
        }
        r = r.cpu(c.build().expect("cpu limits"));
    }
    if let Some(limit) = pids {
        r = r.pids(
            LinuxPidsBuilder::default()
                .limit(limit)
                .build()
                .expect("pids limit"),
        );
    }
    r.build().expect("resources")
}
