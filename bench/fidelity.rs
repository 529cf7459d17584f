//! Fidelity: the same real Dockerfile built by kiln and by BuildKit (Debian's docker.io)
//! on a real Debian base, and the two final file trees compared entry by entry (path,
//! type, mode, owner, size, link target). The base is a `debootstrap --variant=minbase`
//! tree; the packages are fetched on the host beforehand (`apt-get download`), since the
//! private dockerd has no network. Docker 20.10's BuildKit has no heredocs: the Dockerfile
//! writes those steps as the equivalent shell.
//! Usage (root): fidelity-bench ROOTFS   (e.g. debootstrap --variant=minbase bookworm ROOTFS)

mod dockerd;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use dockerd::Dockerd;

const DOCKERFILE: &str = r#"FROM debian:fidelity
COPY debs/ /tmp/debs/
RUN --mount=type=cache,target=/var/cache/apt dpkg -i /tmp/debs/*.deb && rm -rf /tmp/debs
RUN groupadd -r builders && useradd -m -G builders,users app
USER app
WORKDIR /home/app/project
RUN mkdir -p ~/.config && echo "$HOME" > ~/.config/home && id -G > groups && touch x
USER root
COPY files/ /tmp/
RUN printf 'made by a heredoc\n' > /heredoc && echo '{"a":1}' | jq -c . > /jq
"#;

/// Paths whose content is a log or a cache of the moment: not compared.
const VOLATILE: [&str; 5] = [
    "var/log/",
    "var/cache/ldconfig/",
    "var/lib/dpkg/status-old",
    "var/cache/debconf/",
    "etc/shadow",
];

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every entry under `root`: path → "type mode uid:gid size target".
fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .flatten()
    {
        let rel = e.path().strip_prefix(root).unwrap().display().to_string();
        if VOLATILE.iter().any(|v| rel.starts_with(v)) {
            continue;
        }
        let m = std::fs::symlink_metadata(e.path()).unwrap();
        let kind = if m.is_dir() {
            "dir"
        } else if m.file_type().is_symlink() {
            "link"
        } else {
            "file"
        };
        let size = if m.is_file() { m.len() } else { 0 };
        // Content too, by digest.
        let digest = if m.is_file() {
            use sha2::Digest as _;
            let data = std::fs::read(e.path()).unwrap_or_default();
            hex::encode(&sha2::Sha256::digest(&data)[..8])
        } else {
            String::new()
        };
        let target = std::fs::read_link(e.path())
            .map(|t| t.display().to_string())
            .unwrap_or_default();
        out.insert(
            rel,
            format!(
                "{kind} {:o} {}:{} {size} {digest}{target}",
                m.mode() & 0o7777,
                m.uid(),
                m.gid()
            ),
        );
    }
    out
}

/// The image's layers applied in order onto `out`.
fn flatten(store: &kiln_image::store::Store, name: &str, out: &Path) {
    let image = store.resolve(name).unwrap();
    std::fs::create_dir_all(out).unwrap();
    for layer in image.manifest.layers() {
        kiln_image::layer::apply(store.open_blob(layer.digest()).unwrap(), out).unwrap();
    }
}

fn main() {
    let rootfs = PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: fidelity-bench ROOTFS (a debootstrap --variant=minbase tree)"),
    );
    let kiln = std::env::current_exe().unwrap().with_file_name("kiln");
    let work = tempfile::tempdir_in("/tmp").unwrap();
    let w = work.path();
    let base = w.join("base.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&base)
        .arg("."));
    let ctx = w.join("ctx");
    std::fs::create_dir_all(ctx.join("debs")).unwrap();
    std::fs::create_dir_all(ctx.join("files/sub")).unwrap();
    std::fs::write(ctx.join("files/a"), "a").unwrap();
    std::fs::write(ctx.join("files/sub/b"), "b").unwrap();
    std::fs::write(ctx.join("Dockerfile"), DOCKERFILE).unwrap();
    run(Command::new("apt-get")
        .current_dir(ctx.join("debs"))
        .args(["download", "-q", "jq", "libjq1", "libonig5"]));
    let store_dir = w.join("store");
    let kiln_cmd = |args: &[&str]| {
        let mut c = Command::new(&kiln);
        c.env("KILN_ROOT", &store_dir).args(args);
        c
    };
    run(&mut kiln_cmd(&[
        "import",
        base.to_str().unwrap(),
        "debian:fidelity",
    ]));
    run(&mut kiln_cmd(&[
        "build",
        "-t",
        "fid:kiln",
        ctx.to_str().unwrap(),
    ]));

    let dockerd = Dockerd::start(w).expect("BuildKit: apt-get install docker.io");
    run(&mut dockerd.docker(&["import", base.to_str().unwrap(), "debian:fidelity"]));
    run(dockerd
        .docker(&[
            "build",
            "--network",
            "host",
            "-q",
            "-t",
            "fid:bk",
            ctx.to_str().unwrap(),
        ])
        .env("DOCKER_BUILDKIT", "1"));
    let saved = w.join("bk.tar");
    run(&mut dockerd.docker(&["save", "-o", saved.to_str().unwrap(), "fid:bk"]));
    drop(dockerd);
    run(&mut kiln_cmd(&[
        "load",
        "-q",
        "-i",
        saved.to_str().unwrap(),
    ]));

    let store = kiln_image::store::Store::open(&store_dir).unwrap();
    flatten(&store, "fid:kiln", &w.join("kiln-tree"));
    flatten(&store, "fid:bk", &w.join("bk-tree"));
    for name in ["fid:kiln", "fid:bk"] {
        println!("{name}: {}", store.resolve(name).unwrap().id());
    }
    let (k, b) = (tree(&w.join("kiln-tree")), tree(&w.join("bk-tree")));
    for path in [
        "home/app/project/groups",
        "home/app/.config/home",
        "tmp",
        "jq",
        "heredoc",
    ] {
        println!("{path}: {}", k.get(path).map_or("(none)", String::as_str));
    }
    let mut differ = 0;
    for path in k
        .keys()
        .chain(b.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let (kv, bv) = (k.get(path), b.get(path));
        if kv != bv {
            differ += 1;
            println!(
                "{path}\n  kiln:     {}\n  BuildKit: {}",
                kv.map_or("(none)", String::as_str),
                bv.map_or("(none)", String::as_str)
            );
        }
    }
    println!(
        "{} entries in kiln's image, {} in BuildKit's; {differ} differ",
        k.len(),
        b.len()
    );
}
