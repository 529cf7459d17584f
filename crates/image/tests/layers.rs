//! Layers: reproducible writing, faithful round trips, whiteouts, compression, and an
//! applier that refuses entries that would land outside its target.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

mod support;

use kiln_image::layer::{
    apply, write_changes, write_changes_with, write_dir, Change, Compression, LayerOptions,
};
use kiln_testkit::require_root;
use support::crafted;

fn set_mtime(path: &Path, secs: i64) {
    let t = nix::sys::time::TimeSpec::new(secs, 0);
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();
}

/// A tree with every kind of entry a layer keeps, with fixed modes, owners and times.
fn fixture(root: &Path) {
    let long_dir = format!("long/{}", "d".repeat(120));
    for d in ["dir", "empty", long_dir.as_str()] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::write(root.join("dir/file.txt"), "hello\n").unwrap();
    fs::write(root.join("dir/exec"), "#!/bin/sh\necho hi\n").unwrap();
    fs::write(
        root.join(format!("{long_dir}/{}", "f".repeat(110))),
        "long\n",
    )
    .unwrap();
    fs::write(root.join("suid"), "s").unwrap();
    fs::write(root.join("ünïcode"), "u").unwrap();
    fs::hard_link(root.join("dir/file.txt"), root.join("dir/hard")).unwrap();
    std::os::unix::fs::symlink("dir/file.txt", root.join("link")).unwrap();
    nix::unistd::mkfifo(
        &root.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    xattr::set(root.join("dir/exec"), "user.kiln", b"1").unwrap();
    nix::sys::stat::mknod(
        &root.join("null"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .unwrap();
    for (path, mode) in [
        ("dir", 0o755),
        ("empty", 0o700),
        ("dir/file.txt", 0o644),
        ("dir/exec", 0o755),
        ("suid", 0o4755),
        ("ünïcode", 0o600),
        ("fifo", 0o644),
        ("null", 0o666),
    ] {
        fs::set_permissions(root.join(path), fs::Permissions::from_mode(mode)).unwrap();
    }
    nix::unistd::chown(&root.join("dir/exec"), Some(1000.into()), Some(1001.into())).unwrap();
    fs::set_permissions(root.join("suid"), fs::Permissions::from_mode(0o4755)).unwrap();
    for entry in walkdir::WalkDir::new(root).contents_first(true) {
        set_mtime(entry.unwrap().path(), 1_700_000_000);
    }
}

fn write(
    dir: &Path,
    compression: Compression,
    epoch: Option<i64>,
) -> (kiln_image::layer::LayerInfo, Vec<u8>) {
    write_dir(
        dir,
        LayerOptions {
            compression,
            source_date_epoch: epoch,
        },
        Vec::new(),
    )
    .unwrap()
}

#[test]
fn the_same_tree_gives_the_same_layer_digest() {
    require_root!();
    let tmp = tempfile::tempdir().unwrap();
    fixture(tmp.path());
    let (first, bytes) = write(tmp.path(), Compression::None, None);
    let (second, _) = write(tmp.path(), Compression::None, None);
    assert_eq!(first, second);
    assert_eq!(
        first.digest, first.diff_id,
        "an uncompressed layer's digest is its diffID"
    );
    // Pinned: a change here changes every layer kiln has ever made.
    assert_eq!(
        first.diff_id.to_string(),
        "sha256:2e9f1b0c17d660bd9c05355bac705a04b689dca31ae79dd2e482079b8298e871",
        "layer bytes:\n{}",
        listing(&bytes)
    );
    // A copy of the tree made at another time, elsewhere, gives the same layer.
    let other = tempfile::tempdir().unwrap();
    fixture(other.path());
    assert_eq!(write(other.path(), Compression::None, None).0, first);
    // SOURCE_DATE_EPOCH clamps mtimes (and so changes the digest when it is older).
    let (clamped, clamped_bytes) = write(tmp.path(), Compression::None, Some(1_000_000_000));
    assert_ne!(clamped.diff_id, first.diff_id);
    assert!(tar_entries(&clamped_bytes)
        .iter()
        .all(|(_, h)| h.mtime().unwrap() <= 1_000_000_000));
}

fn tar_entries(bytes: &[u8]) -> Vec<(String, tar::Header)> {
    let mut archive = tar::Archive::new(bytes);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.path().unwrap().to_string_lossy().into_owned(),
                e.header().clone(),
            )
        })
        .collect()
}

fn listing(bytes: &[u8]) -> String {
    Command::new("tar")
        .args(["-tvf", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(bytes)?;
            Ok(String::from_utf8_lossy(&c.wait_with_output()?.stdout).into_owned())
        })
        .unwrap_or_default()
}

#[test]
fn tar_entries_are_sorted_numeric_and_nameless() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir(tmp.path().join("b")).unwrap();
    fs::write(tmp.path().join("b/2"), "").unwrap();
    fs::write(tmp.path().join("b/1"), "").unwrap();
    fs::write(tmp.path().join("a"), "").unwrap();
    let (_, bytes) = write(tmp.path(), Compression::None, None);
    let entries = tar_entries(&bytes);
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a", "b/", "b/1", "b/2"]);
    for (_, h) in &entries {
        assert_eq!(
            (h.username().unwrap(), h.groupname().unwrap()),
            (Some(""), Some(""))
        );
        assert!(h.as_ustar().is_some(), "ustar headers, no GNU extensions");
    }
}

/// Everything about a tree that a layer must carry, keyed by relative path.
fn snapshot(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut inodes = std::collections::HashMap::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let entry = entry.unwrap();
        let rel = entry
            .path()
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let m = fs::symlink_metadata(entry.path()).unwrap();
        let content = if m.is_file() {
            fs::read(entry.path()).unwrap()
        } else {
            Vec::new()
        };
        let link = fs::read_link(entry.path())
            .map(|l| l.display().to_string())
            .unwrap_or_default();
        let first = inodes.entry(m.ino()).or_insert_with(|| rel.clone()).clone();
        let xattrs: Vec<String> = xattr::list(entry.path())
            .unwrap()
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| n.starts_with("user."))
            .collect();
        out.push(format!("{rel} mode={:o} uid={} gid={} mtime={} rdev={} link={link} data={:?} hardlink-of={first} xattrs={xattrs:?}",
            m.mode(), m.uid(), m.gid(), m.mtime(), m.rdev(), String::from_utf8_lossy(&content)));
    }
    out
}

#[test]
fn a_layer_applies_back_to_the_same_tree() {
    require_root!();
    let src = tempfile::tempdir().unwrap();
    fixture(src.path());
    for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let (_, bytes) = write(src.path(), compression, None);
        let dst = tempfile::tempdir().unwrap();
        apply(bytes.as_slice(), dst.path()).unwrap();
        assert_eq!(
            snapshot(dst.path()),
            snapshot(src.path()),
            "{compression:?}"
        );
    }
}

#[test]
fn every_compression_carries_the_same_tar_and_standard_tools_read_it() {
    let tmp = tempfile::tempdir().unwrap();
    // Several gzip chunks' worth, so the parallel members are exercised.
    let data: Vec<u8> = (0..5_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    fs::write(tmp.path().join("big"), &data).unwrap();
    fs::write(tmp.path().join("small"), "x").unwrap();
    let (plain, plain_bytes) = write(tmp.path(), Compression::None, None);
    for (compression, tool) in [(Compression::Gzip, "gzip"), (Compression::Zstd, "zstd")] {
        let (info, bytes) = write(tmp.path(), compression, None);
        assert_eq!(info.diff_id, plain.diff_id);
        assert_ne!(info.digest, info.diff_id);
        assert_eq!(info.size, bytes.len() as u64);
        assert_eq!(info.digest, kiln_image::digest::sha256(&bytes));
        assert_eq!(info.media_type, compression.media_type());
        let (again, _) = write(tmp.path(), compression, None);
        assert_eq!(again.digest, info.digest, "{tool} output is deterministic");
        let mut child = Command::new(tool)
            .arg("-dc")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{tool} must be installed: {e}"));
        let mut stdin = child.stdin.take().unwrap();
        let feeder = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &bytes));
        let out = child.wait_with_output().unwrap();
        feeder.join().unwrap().unwrap();
        assert!(out.status.success());
        assert!(out.stdout == plain_bytes, "{tool} -dc gives back the tar");
    }
}

#[test]
fn whiteouts_hide_lower_files_and_opaque_directories_hide_their_contents() {
    let lower = tempfile::tempdir().unwrap();
    for f in ["a/x", "a/y", "b/z", "c/deep/file"] {
        fs::create_dir_all(lower.path().join(f).parent().unwrap()).unwrap();
        fs::write(lower.path().join(f), f).unwrap();
    }
    let target = tempfile::tempdir().unwrap();
    apply(
        write(lower.path(), Compression::None, None).1.as_slice(),
        target.path(),
    )
    .unwrap();

    let upper = tempfile::tempdir().unwrap();
    fs::create_dir_all(upper.path().join("b")).unwrap();
    fs::write(upper.path().join("b/new"), "new").unwrap();
    let changes = [
        Change::Delete("a/x".into()),
        Change::Delete("c".into()),
        Change::Opaque("b".into()),
        Change::Upsert("b".into()),
        Change::Upsert("b/new".into()),
    ];
    let (_, bytes) = write_changes(
        upper.path(),
        &changes,
        LayerOptions {
            compression: Compression::None,
            source_date_epoch: None,
        },
        Vec::new(),
    )
    .unwrap();
    let names: Vec<String> = tar_entries(&bytes).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["a/.wh.x", "b/", "b/.wh..wh..opq", "b/new", ".wh.c"]);
    let stats = apply(bytes.as_slice(), target.path()).unwrap();
    assert_eq!(stats.whiteouts, 3);
    let left: Vec<String> = walkdir::WalkDir::new(target.path())
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .map(|e| {
            e.unwrap()
                .path()
                .strip_prefix(target.path())
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(left, ["a", "a/y", "b", "b/new"]);
}

/// (path, type, link target) of one crafted tar entry.
type Entry<'a> = (&'a str, tar::EntryType, &'a str);

#[test]
fn entries_that_would_escape_the_target_are_refused() {
    use tar::EntryType::{Directory, Link, Regular, Symlink};
    let base = tempfile::tempdir().unwrap();
    let outside = base.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let cases: Vec<(&str, Vec<Entry>, &str)> = vec![
        ("dot-dot", vec![("../outside/pwned", Regular, "")], "`..`"),
        (
            "dot-dot-inside",
            vec![("a/../../outside/pwned", Regular, "")],
            "`..`",
        ),
        ("absolute", vec![("/tmp/pwned", Regular, "")], "absolute"),
        (
            "symlink-up",
            vec![("evil", Symlink, "../outside"), ("evil/pwned", Regular, "")],
            "leads outside",
        ),
        (
            "symlink-chain",
            vec![
                ("d", Directory, ""),
                ("d/up", Symlink, "../.."),
                ("d/up/outside/pwned", Regular, ""),
            ],
            "leads outside",
        ),
        (
            "hardlink-out",
            vec![("h", Link, "../outside/secret")],
            "`..`",
        ),
        (
            "hardlink-through-symlink",
            vec![("evil", Symlink, "../outside"), ("h", Link, "evil/secret")],
            "leads outside",
        ),
        // A whiteout of `..` would empty the target's parent, `outside` included.
        (
            "whiteout-dot-dot",
            vec![(".wh...", Regular, "")],
            "names no file",
        ),
        (
            "whiteout-dot-dot-below",
            vec![("a", Directory, ""), ("a/.wh...", Regular, "")],
            "names no file",
        ),
        (
            "whiteout-dot",
            vec![(".wh..", Regular, "")],
            "names no file",
        ),
        (
            "whiteout-empty",
            vec![("a/.wh.", Regular, "")],
            "names no file",
        ),
    ];
    fs::write(outside.join("secret"), "secret").unwrap();
    for (name, entries, why) in cases {
        let target = base.path().join(format!("target-{name}"));
        fs::create_dir(&target).unwrap();
        let err = apply(crafted(&entries).as_slice(), &target)
            .expect_err(name)
            .to_string();
        assert!(err.contains(why), "{name}: {err}");
        assert!(err.contains("nothing was written outside"), "{name}: {err}");
        let outside_now: Vec<PathBuf> = fs::read_dir(&outside)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(
            outside_now,
            [outside.join("secret")],
            "{name} wrote outside the target"
        );
        assert_eq!(
            fs::read_to_string(outside.join("secret")).unwrap(),
            "secret"
        );
    }
}

#[test]
fn absolute_symlinks_resolve_inside_the_target() {
    use tar::EntryType::{Directory, Regular, Symlink};
    let base = tempfile::tempdir().unwrap();
    let target = base.path().join("root");
    fs::create_dir(&target).unwrap();
    let host_dir = base.path().join("hostdir");
    fs::create_dir(&host_dir).unwrap();
    let abs = host_dir
        .to_str()
        .unwrap()
        .trim_start_matches('/')
        .to_string();
    // `lib -> /<host_dir>`: inside an image this names the image's own <host_dir>.
    let link_target = format!("/{abs}");
    apply(
        crafted(&[
            ("usr/", Directory, ""),
            ("lib", Symlink, &link_target),
            ("lib/file", Regular, ""),
        ])
        .as_slice(),
        &target,
    )
    .unwrap();
    assert!(
        fs::read_dir(&host_dir).unwrap().next().is_none(),
        "nothing written through to the host path"
    );
    let mut inside = String::new();
    fs::File::open(target.join(&abs).join("file"))
        .unwrap()
        .read_to_string(&mut inside)
        .unwrap();
    assert_eq!(inside, "pwned");
}

#[test]
fn a_placeholder_is_written_with_its_sources_data_and_its_own_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let (root, elsewhere) = (dir.path().join("root"), dir.path().join("elsewhere"));
    fs::create_dir_all(&root).unwrap();
    fs::write(&elsewhere, "the data").unwrap();
    let placeholder = root.join("big");
    fs::File::create(&placeholder).unwrap().set_len(8).unwrap();
    fs::set_permissions(&placeholder, fs::Permissions::from_mode(0o600)).unwrap();
    set_mtime(&placeholder, 1_000_000);
    let placeholders = [(PathBuf::from("big"), elsewhere.clone())].into();
    let opts = LayerOptions {
        compression: Compression::None,
        source_date_epoch: None,
    };
    let changes = [Change::Upsert("big".into())];
    let (_, bytes) = write_changes_with(&root, &changes, &placeholders, opts, Vec::new()).unwrap();
    let mut archive = tar::Archive::new(bytes.as_slice());
    let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
    let header = entry.header().clone();
    let mut data = String::new();
    entry.read_to_string(&mut data).unwrap();
    assert_eq!(
        (
            data.as_str(),
            header.mode().unwrap(),
            header.mtime().unwrap()
        ),
        ("the data", 0o600, 1_000_000)
    );

    // A source that shrank since the placeholder was made fails, naming it.
    fs::write(&elsewhere, "short").unwrap();
    let err = write_changes_with(&root, &changes, &placeholders, opts, Vec::new())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&elsewhere.display().to_string()) && err.contains("shrank"),
        "{err}"
    );
}
