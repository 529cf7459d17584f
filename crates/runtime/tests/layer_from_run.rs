//! What a sandboxed step changes becomes an OCI layer: overlay whiteouts and opaque
//! directories turn into `.wh.` entries, and the layer applied to the lower tree gives the
//! tree the step saw.

use std::path::Path;
use std::process::Stdio;

use kiln_image::layer::{apply, overlay_changes, write_changes, Change, Compression, LayerOptions};
use kiln_runtime::{default_spec, spawn, ProcessSpec, Rootfs, Snapshotter};
use kiln_testkit::require_root;

fn lower(dir: &Path) -> std::path::PathBuf {
    let lower = dir.join("lower");
    for d in ["bin", "etc", "data/sub"] {
        std::fs::create_dir_all(lower.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", lower.join("bin/busybox"))
        .expect("/bin/busybox (busybox-static)");
    std::os::unix::fs::symlink("busybox", lower.join("bin/sh")).unwrap();
    std::fs::write(lower.join("etc/keep"), "k").unwrap();
    std::fs::write(lower.join("etc/other"), "o").unwrap();
    std::fs::write(lower.join("data/a"), "a").unwrap();
    std::fs::write(lower.join("data/sub/b"), "b").unwrap();
    lower
}

fn tree(root: &Path) -> Vec<String> {
    let mut out: Vec<String> = walkdir(root)
        .iter()
        .map(|p| p.strip_prefix(root).unwrap().display().to_string())
        .collect();
    out.sort();
    out
}

fn walkdir(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        out.push(p.clone());
        if std::fs::symlink_metadata(&p).unwrap().is_dir() {
            out.extend(walkdir(&p));
        }
    }
    out
}

#[test]
fn a_steps_changes_on_overlayfs_become_a_layer_with_whiteouts() {
    changes_become_a_layer(Snapshotter::Overlay);
}

#[test]
fn a_steps_changes_on_a_copy_become_the_same_layer() {
    changes_become_a_layer(Snapshotter::Copy);
}

fn changes_become_a_layer(snapshotter: Snapshotter) {
    require_root!();
    let tmp = tempfile::tempdir().unwrap();
    let lower = lower(tmp.path());
    let script = "busybox rm /etc/keep && busybox rm -r /data && busybox mkdir /data && echo n > /data/new && echo x > /added && busybox chmod 700 /added";
    let spec = default_spec(&ProcessSpec {
        args: vec!["/bin/sh".into(), "-c".into(), script.into()],
        env: vec!["PATH=/bin".into()],
        cwd: "/".into(),
        hostname: "kiln".into(),
        ..Default::default()
    })
    .unwrap();
    let root = Rootfs {
        lower: vec![lower.clone()],
        upper: tmp.path().join("upper"),
        work: tmp.path().join("work"),
        merged: tmp.path().join("merged"),
        snapshotter,
    };
    let status = spawn(&spec, &root, Stdio::null(), Stdio::null(), Stdio::inherit())
        .unwrap()
        .wait()
        .unwrap();
    assert!(status.success());

    let changes = overlay_changes(&root.upper).unwrap();
    assert!(
        changes.contains(&Change::Delete("etc/keep".into())),
        "{changes:?}"
    );
    assert!(
        changes.contains(&Change::Opaque("data".into())),
        "{changes:?}"
    );
    let (info, layer) = write_changes(
        &root.upper,
        &changes,
        LayerOptions {
            compression: Compression::None,
            source_date_epoch: None,
        },
        Vec::new(),
    )
    .unwrap();
    assert_eq!(info.digest, info.diff_id);
    let mut names: Vec<String> = tar::Archive::new(layer.as_slice())
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "added",
            "data/",
            "data/.wh..wh..opq",
            "data/new",
            "etc/",
            "etc/.wh.keep"
        ]
    );

    // The layer on a copy of the lower tree gives what the step saw.
    let copy = tmp.path().join("copy");
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(&lower)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    apply(layer.as_slice(), &copy).unwrap();
    assert_eq!(
        tree(&copy),
        [
            "added",
            "bin",
            "bin/busybox",
            "bin/sh",
            "data",
            "data/new",
            "etc",
            "etc/other"
        ]
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(copy.join("added"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
}
