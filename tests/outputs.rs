//! `kiln build --output` (root): the final stage's files in a directory and as a tar on
//! standard output, the image as an OCI archive on standard output, pushed by
//! `type=registry`; and `--cache-to`/`--cache-from type=local`, a cache kept in a
//! directory carried to an empty store.

kiln_testkit::private_network!();

use std::collections::BTreeSet;
use std::path::Path;

use kiln_testkit::Registry;
use kiln_testkit::{build_busybox, context, require_root, Kiln};

/// The names in a tar.
fn tar_names(bytes: &[u8]) -> BTreeSet<String> {
    tar::Archive::new(bytes)
        .entries()
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_end_matches('/')
                .to_string()
        })
        .collect()
}

#[test]
fn outputs_write_files_a_tar_an_archive_and_a_push() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    let ctx = context(
        &k.dir.path().join("out"),
        &[(
            "Dockerfile",
            "FROM busybox:kiln AS build\nRUN echo hi > /hello\nFROM scratch\nCOPY --from=build /hello /hello\n",
        )],
    );
    let ctx = ctx.to_str().unwrap();
    let dir = k.dir.path().join("files");
    k.log(&[
        "build",
        "-o",
        &format!("type=local,dest={}", dir.display()),
        ctx,
    ]);
    assert_eq!(std::fs::read_to_string(dir.join("hello")).unwrap(), "hi\n");
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "only the final stage's files"
    );
    // `-o -`: the files as a tar on standard output (the log on standard error).
    let out = k.cmd(&["build", "-o", "-", ctx]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        tar_names(&out.stdout),
        BTreeSet::from(["hello".to_string()])
    );
    // The image as an OCI layout, on standard output.
    let out = k
        .cmd(&["build", "-o", "type=oci,dest=-", ctx])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names = tar_names(&out.stdout);
    assert!(
        names.contains("oci-layout") && names.contains("index.json"),
        "{names:?}"
    );
    // -q would write there too.
    let out = k.run(&["build", "-q", "-o", "-", ctx]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("drop -q"));
    // type=registry: named and pushed; another store pulls it.
    let reg_dir = tempfile::tempdir().unwrap();
    let reg = Registry::start(&reg_dir.path().join("store"), &[]);
    let name = format!("{}/team/out:1", reg.addr);
    k.log(&["build", "-o", &format!("type=registry,name={name}"), ctx]);
    let other = Kiln::new();
    other.ok(&["pull", &name]);
    let flat = kiln_testkit::flatten(&other, &name);
    assert_eq!(std::fs::read_to_string(flat.join("hello")).unwrap(), "hi\n");
}

/// The blob files of an OCI layout directory.
fn blobs(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("blobs/sha256")).unwrap().count()
}

#[test]
fn a_local_cache_directory_gives_an_empty_store_its_hits() {
    require_root!();
    let a = Kiln::new();
    build_busybox(&a);
    let ctx = context(
        &a.dir.path().join("cached"),
        &[(
            "Dockerfile",
            "FROM busybox:kiln\nRUN cat /proc/sys/kernel/random/uuid > /stamp\nRUN echo two > /two\n",
        )],
    );
    let ctx = ctx.to_str().unwrap();
    let cache = a.dir.path().join("ci-cache");
    let to = format!("type=local,dest={},mode=max", cache.display());
    a.log(&["build", "--cache-to", &to, "-t", "app:1", ctx]);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cache.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"][0]["artifactType"],
        "application/vnd.kiln.build-cache.v1"
    );
    // Config, manifest and the two RUN layers.
    assert_eq!(blobs(&cache), 4);
    // Another store, given the same base image, takes its hits from the directory: the
    // same stamp, no RUN run again.
    let b = Kiln::new();
    let base = a.dir.path().join("base.tar");
    a.ok(&["save", "-o", base.to_str().unwrap(), "busybox:kiln"]);
    b.ok(&["load", "-i", base.to_str().unwrap()]);
    let from = format!("type=local,src={}", cache.display());
    let log = b.log(&[
        "build",
        "--progress",
        "plain",
        "--cache-from",
        &from,
        "-t",
        "app:1",
        ctx,
    ]);
    assert_eq!(log.matches("CACHED").count(), 2, "{log}");
    let stamp = |k: &Kiln| {
        std::fs::read_to_string(kiln_testkit::flatten(k, "app:1").join("stamp")).unwrap()
    };
    assert_eq!(stamp(&a), stamp(&b));
    // An export of another build replaces the cache and leaves no blob of the old one.
    let other = context(
        &a.dir.path().join("other"),
        &[("Dockerfile", "FROM busybox:kiln\nRUN echo other > /other\n")],
    );
    a.log(&["build", "--cache-to", &to, other.to_str().unwrap()]);
    assert_eq!(blobs(&cache), 3);
    // A directory that holds no cache: the build says so and goes on without it.
    let empty = a.dir.path().join("no-cache");
    std::fs::create_dir_all(&empty).unwrap();
    let log = b.log(&[
        "build",
        "--progress",
        "plain",
        "--cache-from",
        &format!("type=local,src={}", empty.display()),
        ctx,
    ]);
    assert!(log.contains("index.json"), "{log}");
}
