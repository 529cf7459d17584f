//! Build cases as folders: each `testdata/builds/<case>/` is a build context (its
//! `Dockerfile` and files) built FROM a busybox base that kiln makes from Debian's
//! busybox-static, and `expected.txt` is what the image must hold: every path that differs
//! from the base (type, mode, owner, content digest or link target), every base path it
//! deleted, and the config. Adding a case is adding a folder;
//! `KILN_BLESS=1 cargo test --test build_cases` writes the expectations (read the diff).

kiln_testkit::private_network!();

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use kiln_testkit::{busybox, require_root, Kiln};

/// path → description of every entry under `root`.
fn listing(root: &Path) -> BTreeMap<String, String> {
    use sha2::Digest;
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let m = std::fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            let what = if m.file_type().is_symlink() {
                format!("link -> {}", std::fs::read_link(&path).unwrap().display())
            } else if m.is_dir() {
                stack.push(path.clone());
                "dir".to_string()
            } else {
                let digest = format!("{:x}", sha2::Sha256::digest(std::fs::read(&path).unwrap()));
                format!("file {} bytes sha256:{}", m.len(), &digest[..12])
            };
            out.insert(
                rel,
                format!(
                    "{what} mode={:o} owner={}:{}",
                    m.mode() & 0o7777,
                    m.uid(),
                    m.gid()
                ),
            );
        }
    }
    out
}

fn flatten(k: &Kiln, image: &str, out: &Path) {
    let store = kiln_image::store::Store::open(k.root()).unwrap();
    let resolved = store.resolve(image).unwrap();
    std::fs::create_dir_all(out).unwrap();
    for layer in resolved.manifest.layers() {
        kiln_image::layer::apply(store.open_blob(layer.digest()).unwrap(), out).unwrap();
    }
}

#[test]
fn every_build_case_gives_the_expected_image() {
    require_root!();
    let k = Kiln::new();
    let base_ctx = k.dir.path().join("base");
    std::fs::create_dir_all(&base_ctx).unwrap();
    std::fs::copy(busybox(), base_ctx.join("busybox")).unwrap();
    std::fs::write(base_ctx.join("Dockerfile"), "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n").unwrap();
    k.log(&["build", "-t", "busybox:kiln", base_ctx.to_str().unwrap()]);
    flatten(&k, "busybox:kiln", &k.dir.path().join("flat-base"));
    let base = listing(&k.dir.path().join("flat-base"));

    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/builds");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Dockerfile").is_file())
        .collect();
    cases.sort();
    assert!(cases.len() >= 5);
    let mut failures = Vec::new();
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        // The context is a copy, so expected.txt is not part of it.
        let ctx = k.dir.path().join(format!("ctx-{name}"));
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(&case)
            .arg(&ctx)
            .status()
            .unwrap();
        assert!(status.success());
        let _ = std::fs::remove_file(ctx.join("expected.txt"));
        let tag = format!("case-{name}:1");
        let out = k.run(&["build", "-t", &tag, ctx.to_str().unwrap()]);
        let actual = if out.status.success() {
            let flat = k.dir.path().join(format!("flat-{name}"));
            flatten(&k, &tag, &flat);
            let image = listing(&flat);
            let mut text = String::new();
            for (path, what) in &image {
                if base.get(path) != Some(what) {
                    text.push_str(&format!("{path}: {what}\n"));
                }
            }
            for path in base.keys().filter(|p| !image.contains_key(*p)) {
                text.push_str(&format!("{path}: deleted\n"));
            }
            let inspect: serde_json::Value =
                serde_json::from_str(&k.ok(&["image", "inspect", &tag])).unwrap();
            text.push_str(&format!("config: {}\n", inspect[0]["Config"]));
            text
        } else {
            format!("build failed:\n{}", String::from_utf8_lossy(&out.stderr))
        };
        let expected_path = case.join("expected.txt");
        if std::env::var_os("KILN_BLESS").is_some() {
            std::fs::write(&expected_path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != actual {
            failures.push(format!(
                "{name}:\n--- expected\n{expected}--- actual\n{actual}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
