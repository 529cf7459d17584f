//! The image commands through the kiln binary: import, images, tag, history, inspect,
//! rmi, prune; save and load against skopeo, umoci and podman; a load killed midway and
//! one that runs out of disk leave the store as it was.

kiln_testkit::private_network!();

use std::io::Write;
use std::process::Stdio;

use kiln_testkit::{
    assert_blobs_intact, busybox_rootfs, require_root, require_tool, run_tool, Kiln,
};

#[test]
fn image_commands_show_tag_and_remove_images() {
    let k = Kiln::new();
    let tarball = busybox_rootfs(k.dir.path(), 0);
    let id = k.ok(&["import", tarball.to_str().unwrap(), "busybox:1"]);
    assert!(id.starts_with("sha256:") && id.trim().len() == 71, "{id}");
    let short = &id[7..19];

    k.ok(&["tag", "busybox:1", "localhost:5000/team/bb"]);
    let images = k.ok(&["images"]);
    let lines: Vec<&str> = images.lines().collect();
    assert!(
        lines[0].starts_with("REPOSITORY")
            && lines[0].contains("TAG")
            && lines[0].contains("IMAGE ID")
            && lines[0].ends_with("SIZE"),
        "{images}"
    );
    assert_eq!(lines.len(), 3, "{images}");
    assert!(
        images.contains("busybox ")
            && images.contains("localhost:5000/team/bb ")
            && images.contains(short),
        "{images}"
    );
    assert_eq!(
        k.ok(&["images", "-q"]).lines().collect::<Vec<_>>(),
        [short, short]
    );
    assert!(k
        .ok(&["images", "--digests"])
        .lines()
        .next()
        .unwrap()
        .contains("DIGEST"));
    assert_eq!(k.ok(&["images", "busybox"]).lines().count(), 2);
    let json: serde_json::Value = serde_json::from_str(
        k.ok(&["images", "--format", "json"])
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(json["ID"], short);

    let history = k.ok(&["history", "busybox:1"]);
    assert!(
        history.contains("kiln import") && history.lines().nth(1).unwrap().starts_with(short),
        "{history}"
    );

    let inspect: serde_json::Value =
        serde_json::from_str(&k.ok(&["image", "inspect", "busybox:1"])).unwrap();
    assert_eq!(inspect[0]["Id"], id.trim());
    assert_eq!(
        inspect[0]["RepoTags"],
        serde_json::json!(["busybox:1", "localhost:5000/team/bb:latest"])
    );
    assert_eq!(inspect[0]["Os"], "linux");
    assert_eq!(inspect[0]["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    // A second tag of one repository: still one digest for it; nothing null.
    k.ok(&["tag", "busybox:1", "busybox:2"]);
    let inspect: serde_json::Value =
        serde_json::from_str(&k.ok(&["image", "inspect", "busybox:1"])).unwrap();
    let digests = inspect[0]["RepoDigests"].as_array().unwrap();
    assert_eq!(
        digests.len(),
        2,
        "busybox and localhost:5000/team/bb: {digests:?}"
    );
    assert!(
        inspect[0]
            .as_object()
            .unwrap()
            .values()
            .all(|v| !v.is_null()),
        "{inspect}"
    );
    k.ok(&["rmi", "busybox:2"]);

    // By ID with two tags: refused without -f.
    let out = k.run(&["rmi", short]);
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("must be forced")
    );
    assert_eq!(k.ok(&["rmi", "busybox:1"]).trim(), "Untagged: busybox:1");
    let removed = k.ok(&["rmi", "localhost:5000/team/bb"]);
    assert!(
        removed.contains("Untagged: localhost:5000/team/bb:latest")
            && removed.contains(&format!("Deleted: {}", id.trim())),
        "{removed}"
    );
    assert_eq!(k.ok(&["images", "-q"]), "");
    assert_eq!(
        std::fs::read_dir(k.root().join("blobs/sha256"))
            .unwrap()
            .count(),
        0,
        "rmi frees the blobs"
    );

    let out = k.run(&["history", "nope"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such image: nope"));
}

#[test]
fn prune_removes_untagged_images_and_their_blobs() {
    let k = Kiln::new();
    let first = busybox_rootfs(&k.dir.path().join("a"), 10);
    let second = busybox_rootfs(&k.dir.path().join("b"), 20);
    k.ok(&["import", first.to_str().unwrap(), "app:1"]);
    k.ok(&["import", second.to_str().unwrap(), "app:1"]);
    assert_eq!(
        k.ok(&["images", "--filter", "dangling=true", "-q"])
            .lines()
            .count(),
        1
    );
    let pruned = k.ok(&["image", "prune", "-f"]);
    assert!(
        pruned.contains("deleted: sha256:") && pruned.contains("Total reclaimed space:"),
        "{pruned}"
    );
    assert_eq!(k.ok(&["images", "-q"]).lines().count(), 1);
    k.ok(&["image", "prune", "-a", "-f"]);
    assert_eq!(k.ok(&["images", "-q"]), "");
}

#[test]
fn save_is_read_by_skopeo_and_podman_and_loads_back() {
    require_tool!("skopeo", "podman");
    let k = Kiln::new();
    let tarball = busybox_rootfs(k.dir.path(), 0);
    let id = k
        .ok(&["import", tarball.to_str().unwrap(), "kiln/busybox:1"])
        .trim()
        .to_string();
    let saved = k.dir.path().join("saved.tar");
    k.ok(&["save", "-o", saved.to_str().unwrap(), "kiln/busybox:1"]);
    let again = k.dir.path().join("again.tar");
    k.ok(&["save", "-o", again.to_str().unwrap(), "kiln/busybox:1"]);
    assert_eq!(
        std::fs::read(&saved).unwrap(),
        std::fs::read(&again).unwrap(),
        "save is reproducible"
    );

    for transport in ["oci-archive", "docker-archive"] {
        let info: serde_json::Value = serde_json::from_str(&run_tool(
            "skopeo",
            &[
                "inspect",
                "--config",
                &format!("{transport}:{}", saved.display()),
            ],
        ))
        .unwrap();
        assert_eq!(
            info["rootfs"]["diff_ids"].as_array().unwrap().len(),
            1,
            "{transport}"
        );
    }
    let podman = k.dir.path().join("podman");
    let storage = [
        "--storage-driver",
        "vfs",
        "--root",
        &format!("{}/root", podman.display()),
        "--runroot",
        &format!("{}/run", podman.display()),
    ];
    let mut args = storage.to_vec();
    args.extend(["load", "-i", saved.to_str().unwrap()]);
    let loaded = run_tool("podman", &args);
    assert!(loaded.contains("kiln/busybox:1"), "{loaded}");
    let mut args = storage.to_vec();
    args.extend(["images", "--format", "{{.ID}}", "docker.io/kiln/busybox:1"]);
    assert_eq!(run_tool("podman", &args).trim(), &id[7..19]);

    // podman's own docker-archive and OCI archive load back into a fresh store.
    for (format, file) in [
        ("docker-archive", "podman-docker.tar"),
        ("oci-archive", "podman-oci.tar"),
    ] {
        let out = k.dir.path().join(file);
        let mut args = storage.to_vec();
        args.extend([
            "save",
            "--format",
            format,
            "-o",
            out.to_str().unwrap(),
            "docker.io/kiln/busybox:1",
        ]);
        run_tool("podman", &args);
        let fresh = Kiln::new();
        let loaded = fresh.ok(&["load", "-i", out.to_str().unwrap()]);
        assert!(
            loaded.contains("Loaded image: kiln/busybox:1"),
            "{format}: {loaded}"
        );
        assert_eq!(
            fresh.ok(&["images", "-q"]).trim(),
            &id[7..19],
            "{format}: the same image ID"
        );
    }
}

#[test]
fn skopeo_and_umoci_read_the_store_and_their_images_load() {
    require_tool!("skopeo", "umoci");
    let k = Kiln::new();
    let tarball = busybox_rootfs(k.dir.path(), 0);
    k.ok(&["import", tarball.to_str().unwrap(), "app:1"]);
    let layout = k.dir.path().join("copied");
    run_tool(
        "skopeo",
        &[
            "copy",
            "-q",
            &format!("oci:{}:app:1", k.root().display()),
            &format!("oci:{}:copied", layout.display()),
        ],
    );
    let bundle = k.dir.path().join("bundle");
    run_tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:copied", layout.display()),
            bundle.to_str().unwrap(),
        ],
    );
    assert!(bundle.join("rootfs/bin/busybox").is_file());

    // An image umoci made: a layout tar with a tag-only ref name (kept untagged).
    let umoci_layout = k.dir.path().join("umoci");
    run_tool(
        "umoci",
        &["init", "--layout", umoci_layout.to_str().unwrap()],
    );
    run_tool(
        "umoci",
        &[
            "new",
            "--image",
            &format!("{}:latest", umoci_layout.display()),
        ],
    );
    let umoci_tar = k.dir.path().join("umoci.tar");
    run_tool(
        "tar",
        &[
            "-C",
            umoci_layout.to_str().unwrap(),
            "-cf",
            umoci_tar.to_str().unwrap(),
            ".",
        ],
    );
    let fresh = Kiln::new();
    let loaded = fresh.ok(&["load", "-i", umoci_tar.to_str().unwrap()]);
    assert!(loaded.starts_with("Loaded image ID: sha256:"), "{loaded}");

    // skopeo's docker-archive and oci-archive, with names.
    for (transport, name) in [
        ("docker-archive", "sk/docker:2"),
        ("oci-archive", "sk/oci:3"),
    ] {
        let file = k.dir.path().join(format!("{transport}.tar"));
        run_tool(
            "skopeo",
            &[
                "copy",
                "-q",
                &format!("oci:{}:copied", layout.display()),
                &format!("{transport}:{}:{name}", file.display()),
            ],
        );
        let loaded = fresh.ok(&["load", "-i", file.to_str().unwrap()]);
        assert_eq!(
            loaded.trim(),
            format!("Loaded image: {name}"),
            "{transport}"
        );
    }
    assert_eq!(fresh.ok(&["images"]).lines().count(), 4);
}

#[test]
fn a_load_killed_midway_leaves_no_trace_and_a_retry_succeeds() {
    let k = Kiln::new();
    let tarball = busybox_rootfs(k.dir.path(), 96 << 20);
    k.ok(&["import", tarball.to_str().unwrap(), "big:1"]);
    let saved = k.dir.path().join("big.tar");
    k.ok(&["save", "-o", saved.to_str().unwrap(), "big:1"]);
    let archive = std::fs::read(&saved).unwrap();

    let target = Kiln::new();
    target.ok(&["images"]);
    let mut child = target
        .cmd(&["load"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Half the archive: the big layer is being written when kill -9 comes.
    stdin.write_all(&archive[..archive.len() / 2]).unwrap();
    stdin.flush().unwrap();
    let ingest = target.root().join("ingest");
    kiln_testkit::wait_for("the load to start writing a blob", || {
        std::fs::read_dir(&ingest).is_ok_and(|mut d| d.next().is_some())
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();
    drop(stdin);

    assert_eq!(
        target.ok(&["images", "-q"]),
        "",
        "no tag after a killed load"
    );
    assert_blobs_intact(&target.root());
    assert!(
        std::fs::read_dir(&ingest).unwrap().next().is_some(),
        "the kill came while a blob was being written"
    );
    let loaded = target.ok(&["load", "-i", saved.to_str().unwrap()]);
    assert_eq!(loaded.trim(), "Loaded image: big:1");
    assert_blobs_intact(&target.root());
    target.ok(&["image", "prune", "-f"]);
    assert_eq!(
        std::fs::read_dir(&ingest).unwrap().count(),
        0,
        "prune clears what the killed load left"
    );
    assert_eq!(target.ok(&["images", "-q"]).lines().count(), 1);
}

#[test]
fn a_load_that_runs_out_of_disk_stores_nothing_partial() {
    require_root!();
    let k = Kiln::new();
    let tarball = busybox_rootfs(k.dir.path(), 12 << 20);
    k.ok(&["import", tarball.to_str().unwrap(), "big:1"]);
    let saved = k.dir.path().join("big.tar");
    k.ok(&["save", "-o", saved.to_str().unwrap(), "big:1"]);

    let small = Kiln::new();
    std::fs::create_dir_all(small.root()).unwrap();
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(small.root())
        .status()
        .unwrap();
    assert!(status.success(), "mount a tmpfs");
    let out = small.run(&["load", "-i", saved.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let images = small.ok(&["images", "-q"]);
    let ingest = std::fs::read_dir(small.root().join("ingest"))
        .unwrap()
        .count();
    assert_blobs_intact(&small.root());
    std::process::Command::new("umount")
        .arg(small.root())
        .status()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert_eq!(images, "", "no tag");
    assert_eq!(ingest, 0, "the failed blob's temporary file is removed");
}

#[test]
fn compressed_rootfs_tarballs_import_to_the_same_image() {
    let k = Kiln::new();
    let tarball = busybox_rootfs(k.dir.path(), 0);
    let mut layers = Vec::new();
    for (tool, suffix) in [
        ("cat", "plain.tar"),
        ("gzip", "tar.gz"),
        ("zstd", "tar.zst"),
    ] {
        let file = k.dir.path().join(format!("rootfs.{suffix}"));
        let script = if tool == "cat" {
            format!("cp {} {}", tarball.display(), file.display())
        } else {
            format!("{tool} -c {} > {}", tarball.display(), file.display())
        };
        run_tool("sh", &["-c", &script]);
        let name = format!("base:{}", suffix.replace('.', "-"));
        k.ok(&["import", file.to_str().unwrap(), &name]);
        let inspect: serde_json::Value =
            serde_json::from_str(&k.ok(&["image", "inspect", &name])).unwrap();
        layers.push(inspect[0]["RootFS"]["Layers"].clone());
    }
    // The layer is stored uncompressed, so its diffID is the same whatever the tarball was.
    assert!(layers.windows(2).all(|w| w[0] == w[1]), "{layers:?}");
    let not_tar = k.dir.path().join("not.tar");
    std::fs::write(&not_tar, "hello").unwrap();
    let out = k.run(&["import", not_tar.to_str().unwrap(), "bad"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a tar archive"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn compressed_saves_are_read_everywhere_and_each_layer_is_compressed_once() {
    require_tool!("skopeo");
    let k = Kiln::new();
    let tarball = busybox_rootfs(k.dir.path(), 3 << 20);
    let id = k
        .ok(&["import", tarball.to_str().unwrap(), "app:1"])
        .trim()
        .to_string();
    let inspect: serde_json::Value =
        serde_json::from_str(&k.ok(&["image", "inspect", "app:1"])).unwrap();
    let diff_id = inspect[0]["RootFS"]["Layers"][0]
        .as_str()
        .unwrap()
        .to_string();
    for compression in ["gzip", "zstd"] {
        let file = k.dir.path().join(format!("{compression}.tar"));
        k.ok(&[
            "save",
            "--compression",
            compression,
            "-o",
            file.to_str().unwrap(),
            "app:1",
        ]);
        let remembered = k
            .root()
            .join("compressed")
            .join(compression)
            .join(&diff_id[7..]);
        let first: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&remembered).unwrap()).unwrap();
        let blob = k
            .root()
            .join("blobs/sha256")
            .join(&first["digest"].as_str().unwrap()[7..]);
        let made = std::fs::metadata(&blob).unwrap().modified().unwrap();
        let raw = run_tool(
            "skopeo",
            &[
                "inspect",
                "--raw",
                &format!("oci-archive:{}", file.display()),
            ],
        );
        assert!(
            raw.contains(&format!(
                "application/vnd.oci.image.layer.v1.tar+{compression}"
            )),
            "{raw}"
        );
        let config: serde_json::Value = serde_json::from_str(&run_tool(
            "skopeo",
            &[
                "inspect",
                "--config",
                &format!("docker-archive:{}", file.display()),
            ],
        ))
        .unwrap();
        assert_eq!(config["rootfs"]["diff_ids"][0], diff_id.as_str());
        let fresh = Kiln::new();
        fresh.ok(&["load", "-i", file.to_str().unwrap()]);
        assert_eq!(
            fresh.ok(&["images", "-q", "--no-trunc"]).trim(),
            id,
            "{compression}: same image ID after a round trip"
        );

        // Saving again finds the compressed layer instead of making it again.
        std::thread::sleep(std::time::Duration::from_millis(20));
        k.ok(&[
            "save",
            "--compression",
            compression,
            "-o",
            file.to_str().unwrap(),
            "app:1",
        ]);
        assert_eq!(
            std::fs::metadata(&blob).unwrap().modified().unwrap(),
            made,
            "{compression}: compressed once"
        );
    }
    // Compressed layers outlive a prune while their image lives, and go with it.
    k.ok(&["image", "prune", "-f"]);
    assert!(k
        .root()
        .join("compressed/gzip")
        .join(&diff_id[7..])
        .exists());
    k.ok(&["rmi", "app:1"]);
    assert_eq!(
        std::fs::read_dir(k.root().join("blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn import_takes_changes_a_message_and_a_platform_as_docker_import_does() {
    let k = Kiln::new();
    let tarball = busybox_rootfs(k.dir.path(), 0);
    let tar = tarball.to_str().unwrap();
    k.ok(&[
        "import",
        "-c",
        "ENV A=1",
        "--change",
        "CMD [\"sh\"]",
        "-c",
        "WORKDIR /app",
        "-m",
        "from CI",
        "--platform",
        "linux/arm64/v8",
        tar,
        "imp:1",
    ]);
    let inspect: serde_json::Value =
        serde_json::from_str(&k.ok(&["image", "inspect", "imp:1"])).unwrap();
    let image = &inspect[0];
    assert_eq!(
        image["Config"]["Env"],
        serde_json::json!(["A=1"]),
        "{image}"
    );
    assert_eq!(image["Config"]["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(image["Config"]["WorkingDir"], "/app");
    assert_eq!(
        (image["Os"].as_str(), image["Architecture"].as_str()),
        (Some("linux"), Some("arm64"))
    );
    assert_eq!(image["Variant"], "v8");
    assert!(k
        .ok(&["history", "--no-trunc", "imp:1"])
        .contains("from CI"));
    let out = k.run(&["import", "-c", "RUN echo no", tar, "imp:2"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("RUN cannot be changed on import"),
        "{err}"
    );
}
