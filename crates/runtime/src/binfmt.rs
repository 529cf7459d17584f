//! Running other architectures' programs: QEMU's user-mode emulators registered with the
//! kernel's `binfmt_misc`, from the `binfmt.d` files Debian's `qemu-user-static` ships
//! (`/usr/lib/binfmt.d/qemu-*.conf`, what `systemd-binfmt` reads). kiln registers them
//! with the `F` flag, as docker's `tonistiigi/binfmt` does: the kernel opens the emulator
//! once, at registration, so it runs inside any root a RUN step or container has.

use std::path::{Path, PathBuf};

use crate::Error;

/// Where the kernel's `binfmt_misc` file system is mounted.
const BINFMT_MISC: &str = "/proc/sys/fs/binfmt_misc";
/// Where Debian's packages put their `binfmt.d` entries.
const BINFMT_D: &str = "/usr/lib/binfmt.d";

/// One emulator Debian ships, and how the kernel has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emulator {
    /// The entry's name: `qemu-aarch64`.
    pub name: String,
    /// The machine it runs, as `uname -m` says it: `aarch64`.
    pub machine: String,
    /// The registration line (`:name:type:offset:magic:mask:interpreter:flags`).
    line: String,
    /// Whether the kernel runs its programs in any root.
    pub state: State,
}

/// Whether the kernel runs an emulator's programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Registered and enabled with the `F` flag: usable in any root.
    Registered,
    /// Registered without `F` (the interpreter is looked up in the program's own root,
    /// where a build's root does not have it), or disabled.
    Unusable,
    /// Not registered.
    Absent,
}

/// The emulators Debian's `qemu-user-static` installed, each with its state (none when
/// the package is not installed).
pub fn emulators() -> Result<Vec<Emulator>, Error> {
    let dir = match std::fs::read_dir(BINFMT_D) {
        Ok(dir) => dir,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::Io {
                op: "reading",
                path: BINFMT_D.into(),
                source,
            })
        }
    };
    let mut found = Vec::new();
    for entry in dir.flatten() {
        let path = entry.path();
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(name) = file_name
            .strip_suffix(".conf")
            .filter(|n| n.starts_with("qemu-"))
        else {
            continue;
        };
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
            op: "reading",
            path: path.clone(),
            source,
        })?;
        let Some(line) = text
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with(':'))
            .map(str::to_string)
        else {
            continue;
        };
        found.push(Emulator {
            name: name.to_string(),
            machine: name.trim_start_matches("qemu-").to_string(),
            state: state_of(name),
            line,
        });
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

fn state_of(name: &str) -> State {
    match std::fs::read_to_string(Path::new(BINFMT_MISC).join(name)) {
        Ok(text) => {
            let enabled = text.lines().next() == Some("enabled");
            let fixed = text
                .lines()
                .find_map(|l| l.strip_prefix("flags: "))
                .is_some_and(|f| f.contains('F'));
            if enabled && fixed {
                State::Registered
            } else {
                State::Unusable
            }
        }
        Err(_) => State::Absent,
    }
}

/// The platforms whose programs run here: this machine's, and those of the emulators
/// registered for use in any root.
pub fn runnable() -> Vec<kiln_image::Platform> {
    let mut platforms = vec![kiln_image::Platform::host()];
    for e in emulators().unwrap_or_default() {
        if e.state == State::Registered {
            if let Some(p) = kiln_image::Platform::of_machine(&e.machine) {
                if !platforms.contains(&p) {
                    platforms.push(p);
                }
            }
        }
    }
    platforms
}

/// Whether programs for `machine` (`uname -m`'s name: `aarch64`) can run here through an
/// emulator; if not, why, what to do, and which platforms can.
pub fn can_run(machine: &str) -> Result<(), String> {
    let name = format!("qemu-{machine}");
    let why = if !Path::new(BINFMT_MISC).join("status").exists() {
        format!(
            "this machine cannot run {machine} programs: binfmt_misc is not mounted at {BINFMT_MISC}; run `kiln builder binfmt --install` as root (it mounts it and registers Debian's qemu-user-static emulators)"
        )
    } else {
        match state_of(&name) {
            State::Registered => return Ok(()),
            State::Unusable => format!(
                "{name} is registered with binfmt_misc but disabled or without the F flag, so a build's root cannot find it: run `kiln builder binfmt --install` to register it again"
            ),
            State::Absent => format!(
                "this machine cannot run {machine} programs: no emulator is registered for it; install Debian's qemu-user-static and run `kiln builder binfmt --install`"
            ),
        }
    };
    let can: Vec<String> = runnable().iter().map(|p| p.to_string()).collect();
    Err(format!(
        "{why} (RUN steps can run here for: {})",
        can.join(", ")
    ))
}

/// Registers every emulator Debian installed that is not usable yet (mounting
/// `binfmt_misc` first if needed), with the `F` flag; returns the names registered.
pub fn install() -> Result<Vec<String>, Error> {
    let status = Path::new(BINFMT_MISC).join("status");
    if !status.exists() {
        nix::mount::mount(
            Some("binfmt_misc"),
            BINFMT_MISC,
            Some("binfmt_misc"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .map_err(|e| Error::Mount {
            destination: BINFMT_MISC.into(),
            reason: format!("{e} (binfmt_misc needs root and the kernel's binfmt_misc module)"),
        })?;
    }
    let mut registered = Vec::new();
    for emulator in emulators()? {
        let entry: PathBuf = Path::new(BINFMT_MISC).join(&emulator.name);
        match emulator.state {
            State::Registered => continue,
            // Removed first: an entry cannot be changed in place.
            State::Unusable => write(&entry, "-1")?,
            State::Absent => {}
        }
        write(
            &Path::new(BINFMT_MISC).join("register"),
            &with_fixed_flag(&emulator.line),
        )?;
        registered.push(emulator.name);
    }
    Ok(registered)
}

/// The registration line with `F` among its flags (the last field).
fn with_fixed_flag(line: &str) -> String {
    match line.rsplit_once(':') {
        Some((head, flags)) if !flags.contains('F') => format!("{head}:{flags}F"),
        _ => line.to_string(),
    }
}

fn write(path: &Path, text: &str) -> Result<(), Error> {
    std::fs::write(path, text).map_err(|source| Error::Io {
        op: "writing",
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixed_flag_is_added_once() {
        assert_eq!(
            with_fixed_flag(":qemu-arm:M::\\x7f:\\xff:/usr/bin/qemu-arm:OC"),
            ":qemu-arm:M::\\x7f:\\xff:/usr/bin/qemu-arm:OCF"
        );
        assert_eq!(with_fixed_flag(":a:M::m:k:/i:POF"), ":a:M::m:k:/i:POF");
        assert_eq!(with_fixed_flag(":a:M::m:k:/i:"), ":a:M::m:k:/i:F");
    }
}
