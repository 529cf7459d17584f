//! The root filesystem of a sandbox: planned from the spec before fork ([`plan`]), built
//! in the sandbox's mount namespace ([`apply`]): the overlay root, the spec's mounts,
//! the standard devices, Docker's masked and read-only paths, then `pivot_root`.

pub(crate) mod apply;
pub(crate) mod plan;

use std::io;

use nix::mount::MsFlags;

/// Moves the calling process into a mount namespace of its own: the mounts it makes
/// (a builder's views of stages) vanish when it exits, whatever way it exits.
pub fn isolate_mounts() -> io::Result<()> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(io::Error::from)?;
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(io::Error::from)
}
