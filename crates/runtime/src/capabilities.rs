//! The process's capability sets, from the spec's `process.capabilities`, as bit masks
//! worked out before fork and applied in the sandbox with raw system calls.

use std::io;
use std::str::FromStr;

use oci_spec::runtime::{Capabilities, LinuxCapabilities};

use crate::error::Error;

/// Each set as a mask of capability bits (`1 << CAP_*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CapSets {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

/// The kernel's `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Every capability this kernel interface knows, by name (`CAP_CHOWN`, ...).
pub fn known() -> Vec<String> {
    let mut names: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    names.sort();
    names
}

/// The mask of `names` (`CAP_CHOWN`, ...).
pub(crate) fn mask_of<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<u64, Error> {
    names.into_iter().try_fold(0u64, |mask, name| {
        caps::Capability::from_str(name)
            .map(|c| mask | c.bitmask())
            .map_err(|_| Error::Capability {
                name: name.to_string(),
            })
    })
}

fn mask(set: &Option<Capabilities>) -> Result<u64, Error> {
    let names: Vec<String> = set
        .iter()
        .flatten()
        // The spec's names serialize as `CAP_…`, the form the caps crate reads.
        .filter_map(|c| serde_json::to_value(c).ok()?.as_str().map(str::to_string))
        .collect();
    mask_of(names.iter().map(String::as_str))
}

impl CapSets {
    /// The sets the spec asks for; a set it leaves out is empty, as the spec says.
    pub(crate) fn from_spec(caps: Option<&LinuxCapabilities>) -> Result<Self, Error> {
        let Some(caps) = caps else {
            return Ok(Self::default());
        };
        Ok(Self {
            bounding: mask(caps.bounding())?,
            effective: mask(caps.effective())?,
            permitted: mask(caps.permitted())?,
            inheritable: mask(caps.inheritable())?,
            ambient: mask(caps.ambient())?,
        })
    }

    /// Drops every capability outside the bounding set. Needs CAP_SETPCAP, so it runs
    /// while the process is still root with every capability.
    pub(crate) fn drop_bounding(&self) -> io::Result<()> {
        for cap in 0..64u64 {
            if self.bounding & (1 << cap) != 0 {
                continue;
            }
            // SAFETY: prctl(2) with integer arguments.
            let rc = unsafe { nix::libc::prctl(nix::libc::PR_CAPBSET_DROP, cap, 0, 0, 0) };
            // EINVAL: a capability this kernel does not have; past the last one.
            if rc != 0 && io::Error::last_os_error().raw_os_error() != Some(nix::libc::EINVAL) {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }

    /// Sets the effective, permitted, inheritable and ambient sets. Runs after the
    /// switch to the spec's user (with `PR_SET_KEEPCAPS`, so the permitted set survived it).
    pub(crate) fn apply(&self) -> io::Result<()> {
        let header = CapHeader {
            version: CAPABILITY_VERSION_3,
            pid: 0,
        };
        let word = |set: u64, i: u32| (set >> (32 * i)) as u32;
        let data = [0, 1].map(|i| CapData {
            effective: word(self.effective, i),
            permitted: word(self.permitted, i),
            inheritable: word(self.inheritable, i),
        });
        // SAFETY: capset(2) reads the header and two data words, both on this stack.
        let rc = unsafe {
            nix::libc::syscall(
                nix::libc::SYS_capset,
                &header as *const CapHeader,
                data.as_ptr(),
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: prctl(2) with integer arguments.
        unsafe {
            if nix::libc::prctl(
                nix::libc::PR_CAP_AMBIENT,
                nix::libc::PR_CAP_AMBIENT_CLEAR_ALL,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            // The kernel raises an ambient capability only if it is permitted and
            // inheritable; runc skips the others (its own default spec lists ambient
            // capabilities with no inheritable set), and so does kiln.
            let raisable = self.ambient & self.permitted & self.inheritable;
            for cap in (0..64u64).filter(|c| raisable & (1 << c) != 0) {
                if nix::libc::prctl(
                    nix::libc::PR_CAP_AMBIENT,
                    nix::libc::PR_CAP_AMBIENT_RAISE,
                    cap,
                    0,
                    0,
                ) != 0
                {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        Ok(())
    }
}
