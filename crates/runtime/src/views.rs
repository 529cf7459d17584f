//! Read-only views of layer stacks, mounted for a build to read a stage or an image
//! from (`COPY --from`, `RUN --mount=from`): one directory bound read-only, several joined
//! by a read-only overlayfs (or, where overlayfs cannot run, merged by hard links first).

use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// Mounts a read-only union of `lowers` (topmost first) on the empty directory `at`;
/// with `copy`, several lowers are merged into `at` with hard links and that is bound.
pub fn mount_view(lowers: &[PathBuf], at: &Path, copy: bool) -> io::Result<()> {
    match lowers {
        [] => Ok(()),
        [one] => {
            mount(
                Some(one.as_path()),
                at,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )?;
            mount(
                None::<&str>,
                at,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                None::<&str>,
            )?;
            Ok(())
        }
        many if copy => {
            crate::merge_layers(many, at, true)?;
            mount_view(&[at.to_path_buf()], at, false)
        }
        many => {
            let dirs: Vec<String> = many.iter().map(|p| p.display().to_string()).collect();
            let options = format!("lowerdir={}", dirs.join(":"));
            mount(
                Some("overlay"),
                at,
                Some("overlay"),
                MsFlags::MS_RDONLY,
                Some(options.as_str()),
            )?;
            Ok(())
        }
    }
}

/// Undoes [`mount_view`] and removes what is left: the mount point, or the tree of hard
/// links a copied view made (nothing under a view is removed while it is mounted).
pub fn unmount_view(at: &Path) {
    if umount2(at, MntFlags::MNT_DETACH).is_ok() {
        let _ = std::fs::remove_dir_all(at);
    } else {
        let _ = std::fs::remove_dir(at);
    }
}
