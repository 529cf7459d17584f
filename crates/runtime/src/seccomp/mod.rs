//! seccomp: the OCI `linux.seccomp` compiled to a BPF program with libseccomp (as runc,
//! crun and youki compile it) in the caller, and loaded in the sandbox with one system
//! call, so nothing is allocated between fork and exec.

mod profile;

use std::collections::HashMap;
use std::io::{Read, Seek};
use std::sync::{Arc, Mutex, OnceLock};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};

use crate::error::Error;

pub(crate) use profile::{default_seccomp, from_profile};

/// A compiled filter, ready for `seccomp(SECCOMP_SET_MODE_FILTER)`.
pub(crate) struct Program {
    filter: Vec<nix::libc::sock_filter>,
}

impl Program {
    /// Loads the filter on the calling thread. Runs in the sandbox between fork and
    /// exec: one system call, no allocation.
    pub(crate) fn load(&self) -> std::io::Result<()> {
        let prog = nix::libc::sock_fprog {
            len: self.filter.len() as u16,
            filter: self.filter.as_ptr() as *mut nix::libc::sock_filter,
        };
        // SAFETY: `prog` points at `self.filter`, which outlives the call; the kernel
        // copies the program.
        let rc = unsafe {
            nix::libc::syscall(
                nix::libc::SYS_seccomp,
                nix::libc::SECCOMP_SET_MODE_FILTER,
                0,
                &prog as *const nix::libc::sock_fprog,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Where compiled filters are kept between processes (root's only).
const DISK_CACHE: &str = "/run/kiln/seccomp";

/// Compiles `seccomp` once per process and per distinct profile (a build runs many
/// steps with the same one), and keeps the BPF on disk for the next process (a `kiln run`
/// would otherwise spend more compiling it than starting the container). A cached file
/// holds its whole key (the profile and libseccomp's version), checked on reading, so a
/// name clash or a libseccomp upgrade only compiles again.
pub(crate) fn compile(seccomp: &LinuxSeccomp) -> Result<Arc<Program>, Error> {
    static COMPILED: OnceLock<Mutex<HashMap<String, Arc<Program>>>> = OnceLock::new();
    let version = libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_default();
    let key = format!(
        "libseccomp {version}\n{}",
        serde_json::to_string(seccomp).unwrap_or_default()
    );
    let cache = COMPILED.get_or_init(Default::default);
    if let Some(p) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(p.clone());
    }
    let path = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        std::path::Path::new(DISK_CACHE).join(format!("{:016x}.bpf", h.finish()))
    };
    let bpf = match read_cached(&path, &key) {
        Some(bpf) => bpf,
        None => {
            let bpf = export(seccomp).map_err(|e| Error::Seccomp {
                reason: e.to_string(),
            })?;
            write_cached(&path, &key, &bpf);
            bpf
        }
    };
    let program = Arc::new(program(&bpf));
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, program.clone());
    Ok(program)
}

fn action(action: LinuxSeccompAction, errno: Option<u32>) -> ScmpAction {
    match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        // EPERM when the profile names no errno, as runc does.
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno.unwrap_or(1) as i32),
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(errno.unwrap_or(1) as u16),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
    }
}

fn arch(arch: Arch) -> Option<ScmpArch> {
    Some(match arch {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        _ => return None,
    })
}

fn compare(arg: &oci_spec::runtime::LinuxSeccompArg) -> ScmpArgCompare {
    let op = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        // The spec's `value` is the mask and `valueTwo` the datum, as runc reads them.
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            return ScmpArgCompare::new(
                arg.index() as u32,
                ScmpCompareOp::MaskedEqual(arg.value()),
                arg.value_two().unwrap_or(0),
            )
        }
    };
    ScmpArgCompare::new(arg.index() as u32, op, arg.value())
}

/// The BPF in `path` if the file was written for `key`.
fn read_cached(path: &std::path::Path, key: &str) -> Option<Vec<u8>> {
    let bytes = std::fs::read(path).ok()?;
    let rest = bytes.strip_prefix(key.as_bytes())?.strip_prefix(b"\0")?;
    (!rest.is_empty() && rest.len() % 8 == 0).then(|| rest.to_vec())
}

/// Keeps `bpf` for `key` (written whole, then renamed); a cache that cannot be written
/// only means compiling again.
fn write_cached(path: &std::path::Path, key: &str, bpf: &[u8]) {
    use std::io::Write;
    use std::os::unix::fs::DirBuilderExt;
    let Some(dir) = path.parent() else {
        return;
    };
    let _ = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir);
    if let Ok(mut tmp) = tempfile::NamedTempFile::new_in(dir) {
        let written = tmp
            .write_all(key.as_bytes())
            .and_then(|()| tmp.write_all(b"\0"))
            .and_then(|()| tmp.write_all(bpf));
        if written.is_ok() {
            let _ = tmp.persist(path);
        }
    }
}

fn program(bpf: &[u8]) -> Program {
    let filter = bpf
        .chunks_exact(8)
        .map(|c| nix::libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    Program { filter }
}

/// The filter as BPF bytes.
fn export(seccomp: &LinuxSeccomp) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let default = action(seccomp.default_action(), seccomp.default_errno_ret());
    let mut ctx = ScmpFilterContext::new(default)?;
    for a in seccomp
        .architectures()
        .iter()
        .flatten()
        .filter_map(|a| arch(*a))
    {
        ctx.add_arch(a)?;
    }
    for rule in seccomp.syscalls().iter().flatten() {
        let act = action(rule.action(), rule.errno_ret());
        // libseccomp refuses a rule that does what the default does.
        if act == default {
            continue;
        }
        let args = rule.args().clone().unwrap_or_default();
        // Comparisons on one argument are ORed, not ANDed: one rule each, as runc adds them.
        let same_index = args
            .iter()
            .enumerate()
            .any(|(i, a)| args[..i].iter().any(|b| b.index() == a.index()));
        for name in rule.names() {
            // A name this libseccomp does not know is a syscall this kernel's filter
            // cannot meet; runc passes over it too.
            let Ok(call) = ScmpSyscall::from_name(name) else {
                continue;
            };
            if args.is_empty() {
                ctx.add_rule(act, call)?;
            } else if same_index {
                for a in &args {
                    ctx.add_rule_conditional(act, call, &[compare(a)])?;
                }
            } else {
                let cmps: Vec<ScmpArgCompare> = args.iter().map(compare).collect();
                ctx.add_rule_conditional(act, call, &cmps)?;
            }
        }
    }
    // The kernel wants the program, not libseccomp's context: export it and read it back.
    let mut file = tempfile::tempfile()?;
    ctx.export_bpf(&file)?;
    let mut bytes = Vec::new();
    file.rewind()?;
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}
