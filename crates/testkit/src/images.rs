//! Base images and contexts: busybox from Debian's busybox-static, as a root filesystem
//! tarball or built into a store; and reading an image back as a directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Kiln;

/// A root filesystem tarball with a static busybox and a few of its links (from Debian's
/// busybox-static), plus `extra_bytes` of incompressible data in `/data` when asked.
pub fn busybox_rootfs(dir: &Path, extra_bytes: usize) -> PathBuf {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy(busybox(), root.join("bin/busybox")).unwrap();
    for link in ["sh", "ls", "cat", "echo"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(link)).unwrap();
    }
    if extra_bytes > 0 {
        let mut state = 0x9e3779b97f4a7c15u64;
        let data: Vec<u8> = (0..extra_bytes)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        std::fs::write(root.join("data"), data).unwrap();
    }
    let tarball = dir.join("rootfs.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .args(["-cf"])
        .arg(&tarball)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    tarball
}

/// Debian's static busybox; panics, naming the package, when it is missing.
pub fn busybox() -> PathBuf {
    let path = PathBuf::from("/bin/busybox");
    assert!(
        path.exists(),
        "/bin/busybox is missing: install busybox-static (scripts/setup does)"
    );
    path
}

/// Every blob in the store hashes to its name: nothing partial is visible.
pub fn assert_blobs_intact(root: &Path) {
    use sha2::Digest;
    for entry in std::fs::read_dir(root.join("blobs/sha256")).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let hex = format!("{:x}", sha2::Sha256::digest(&data));
        assert_eq!(
            path.file_name().unwrap().to_string_lossy(),
            hex,
            "blob {} does not match its name",
            path.display()
        );
    }
}

/// Writes `files` (name, content) under `dir`, making directories as needed.
pub fn context(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for (name, content) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    dir.to_path_buf()
}

/// `FROM scratch`, `COPY busybox`, `RUN busybox --install`: the base the other tests use.
pub fn build_busybox(k: &Kiln) {
    let ctx = context(&k.dir.path().join("base"), &[("Dockerfile", "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n")]);
    std::fs::copy(busybox(), ctx.join("busybox")).unwrap();
    k.ok(&["build", "-t", "busybox:kiln", ctx.to_str().unwrap()]);
}

/// The image's layers applied in order onto a fresh directory.
pub fn flatten(k: &Kiln, image: &str) -> PathBuf {
    let store = kiln_image::store::Store::open(k.root()).unwrap();
    let resolved = store.resolve(image).unwrap();
    let out = k
        .dir
        .path()
        .join(format!("flat-{}", image.replace([':', '/'], "-")));
    std::fs::create_dir_all(&out).unwrap();
    for layer in resolved.manifest.layers() {
        kiln_image::layer::apply(store.open_blob(layer.digest()).unwrap(), &out).unwrap();
    }
    out
}
