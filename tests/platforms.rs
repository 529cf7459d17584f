//! Multi-platform builds (root; Debian's qemu-user-static and the arm64 busybox that
//! `scripts/setup` fetches): the busybox example for linux/amd64 and linux/arm64, its
//! arm64 RUN steps through QEMU, one index pushed to `kiln registry serve` on 127.0.0.1
//! and read back by skopeo and `kiln pull --platform`; a cross-compilation stage
//! (`FROM --platform=$BUILDPLATFORM`) running natively in both.

kiln_testkit::private_network!();

use std::path::{Path, PathBuf};

use kiln_testkit::Registry;
use kiln_testkit::{require_root, run_tool, Kiln};

/// Debian's `busybox-static:arm64`, unpacked by `scripts/setup`.
const ARM64_BUSYBOX: &str = "/opt/kiln-arm64/bin/busybox";

/// A context with each platform's busybox beside a Dockerfile that picks one by
/// `TARGETARCH`.
fn context(dir: &Path, dockerfile: &str) -> PathBuf {
    assert!(
        Path::new(ARM64_BUSYBOX).is_file(),
        "{ARM64_BUSYBOX}: scripts/setup fetches Debian's busybox-static:arm64"
    );
    let ctx = kiln_testkit::context(dir, &[("Dockerfile", dockerfile)]);
    std::fs::copy(kiln_testkit::busybox(), ctx.join("busybox-amd64")).unwrap();
    std::fs::copy(ARM64_BUSYBOX, ctx.join("busybox-arm64")).unwrap();
    ctx
}

const BUSYBOX: &str = "FROM scratch
ARG TARGETARCH
COPY busybox-${TARGETARCH} /bin/busybox
RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]
RUN echo \"machine: $(uname -m)\" && uname -m > /machine
";

#[test]
fn two_platforms_build_through_qemu_push_as_one_index_and_pull_per_platform() {
    require_root!();
    let k = Kiln::new();
    // What a user runs once per machine: Debian's emulators registered with the F flag.
    let binfmt = k.ok(&["builder", "binfmt", "--install"]);
    assert!(binfmt.contains("linux/arm64\temulated"), "{binfmt}");
    let reg_dir = tempfile::tempdir().unwrap();
    let reg = Registry::start(&reg_dir.path().join("store"), &[]);
    let name = format!("{}/team/multi:1", reg.addr);
    let ctx = context(&k.dir.path().join("multi"), BUSYBOX);
    let out = k.log(&[
        "build",
        "--progress",
        "plain",
        "--platform",
        "linux/amd64,linux/arm64",
        "--push",
        "-t",
        &name,
        ctx.to_str().unwrap(),
    ]);
    // Each platform's RUN said its machine: arm64's through QEMU.
    assert!(out.contains("machine: x86_64"), "{out}");
    assert!(out.contains("machine: aarch64"), "{out}");
    assert!(out.contains("[linux/arm64 5/5] RUN echo"), "{out}");
    // The store names an index with both, as `images --tree` shows; each platform's
    // image runs.
    let tree = k.ok(&["images", "--tree"]);
    assert!(
        tree.contains("├─ linux/amd64") && tree.contains("└─ linux/arm64"),
        "{tree}"
    );
    assert_eq!(
        k.ok(&[
            "run",
            "--rm",
            "--platform",
            "linux/arm64",
            &name,
            "cat",
            "/machine"
        ]),
        "aarch64\n"
    );
    assert_eq!(k.ok(&["run", "--rm", &name, "cat", "/machine"]), "x86_64\n");
    // Saved and loaded into another store: both platforms travel.
    let archive = k.dir.path().join("multi.tar");
    k.ok(&["save", "-o", archive.to_str().unwrap(), &name]);
    let loaded = Kiln::new();
    loaded.ok(&["load", "-i", archive.to_str().unwrap()]);
    let tree = loaded.ok(&["images", "--tree"]);
    assert!(
        tree.contains("├─ linux/amd64")
            && tree.contains("└─ linux/arm64")
            && !tree.contains("not in"),
        "{tree}"
    );
    assert_eq!(
        loaded.ok(&[
            "run",
            "--rm",
            "--platform",
            "linux/arm64",
            &name,
            "cat",
            "/machine"
        ]),
        "aarch64\n"
    );
    // The registry has one index with both manifests, as skopeo reads it.
    let raw = run_tool(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{name}"),
        ],
    );
    let index: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        index["mediaType"], "application/vnd.oci.image.index.v1+json",
        "{raw}"
    );
    let platforms: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["platform"]["architecture"].as_str().unwrap().to_string(),
                m["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        platforms.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(),
        ["amd64", "arm64"],
        "{raw}"
    );
    // Another store pulls the arm64 image: the manifest skopeo lists for arm64, whose
    // config says arm64, its busybox an aarch64 program.
    let other = Kiln::new();
    let pulled = other.log(&["pull", "--platform", "linux/arm64", &name]);
    assert!(pulled.contains("Digest: sha256:"), "{pulled}");
    let arm = run_tool(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!(
                "docker://{}@{}",
                name.rsplit_once(':').unwrap().0,
                platforms[1].1
            ),
        ],
    );
    let store = kiln_image::store::Store::open(other.root()).unwrap();
    let arm64 = kiln_image::Platform::parse("linux/arm64").unwrap();
    let image = store.resolve_for(&name, &arm64).unwrap();
    assert_eq!(image.manifest_digest.to_string(), platforms[1].1, "{arm}");
    assert_eq!(image.config.architecture().to_string(), "arm64");
    let flat = kiln_testkit::flatten(&other, &name);
    let machine = std::fs::read(flat.join("bin/busybox")).unwrap();
    // ELF e_machine 0xb7: AArch64.
    assert_eq!(&machine[18..20], &[0xb7, 0x00]);
    let tree = other.ok(&["images", "--tree"]);
    let amd64 = tree.lines().find(|l| l.contains("linux/amd64")).unwrap();
    assert!(amd64.contains("not in the store"), "{tree}");
    // The amd64 image was not pulled: asking for it says what the store has.
    let err = store
        .resolve_for(&name, &kiln_image::Platform::parse("linux/amd64").unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("it has: linux/arm64"), "{err}");
}

#[test]
fn a_cross_compilation_stage_runs_natively_for_every_target() {
    require_root!();
    let k = Kiln::new();
    k.ok(&["builder", "binfmt", "--install"]);
    let ctx = context(
        &k.dir.path().join("cross"),
        "FROM --platform=$BUILDPLATFORM scratch AS build
ARG BUILDARCH
COPY busybox-${BUILDARCH} /bin/busybox
ARG TARGETARCH
RUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox echo built on $(/bin/busybox uname -m) for $TARGETARCH > /out\"]
FROM scratch
COPY --from=build /out /out
",
    );
    let out = k.log(&[
        "build",
        "--progress",
        "plain",
        "--platform",
        "linux/amd64,linux/arm64",
        "-t",
        "cross:1",
        ctx.to_str().unwrap(),
    ]);
    let host = kiln_image::Platform::host();
    assert!(out.contains(&format!("[{host} build 5/5] RUN")), "{out}");
    let store = kiln_image::store::Store::open(k.root()).unwrap();
    for (arch, wanted) in [
        ("amd64", "built on x86_64 for amd64\n"),
        ("arm64", "built on x86_64 for arm64\n"),
    ] {
        let platform = kiln_image::Platform::parse(&format!("linux/{arch}")).unwrap();
        let image = store.resolve_for("cross:1", &platform).unwrap();
        assert_eq!(image.config.architecture().to_string(), arch);
        let layer = image.manifest.layers()[0].digest().clone();
        let mut tar = tar::Archive::new(std::fs::File::open(store.blob_path(&layer)).unwrap());
        let mut found = String::new();
        for entry in tar.entries().unwrap() {
            let mut entry = entry.unwrap();
            if entry.path().unwrap().ends_with("out") {
                std::io::Read::read_to_string(&mut entry, &mut found).unwrap();
            }
        }
        assert_eq!(found, wanted);
    }
}

/// RUN steps for a platform this machine has no emulator for are refused before anything
/// runs, with what to do.
#[test]
fn a_platform_without_an_emulator_is_refused_naming_what_to_do() {
    require_root!();
    let k = Kiln::new();
    let ctx = context(&k.dir.path().join("none"), BUSYBOX);
    // No Debian package has an emulator for this one.
    let out = k.run(&["build", "--platform", "linux/wasm32", ctx.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("RUN steps for linux/wasm32: this machine cannot run wasm32 programs")
            && err.contains("kiln builder binfmt --install")
            && err.contains(&format!(
                "RUN steps can run here for: {}",
                kiln_image::Platform::host()
            )),
        "{err}"
    );
    assert_eq!(k.ok(&["images", "-q"]), "");
}
