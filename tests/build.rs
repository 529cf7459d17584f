//! `kiln build` end to end: a busybox base built from Debian's busybox-static, a
//! multi-stage image checked file by file, the cache, and builds that must fail cleanly.

kiln_testkit::private_network!();

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use kiln_testkit::{build_busybox, busybox, context, flatten, require_root, require_tool, Kiln};

#[test]
fn a_multi_stage_build_gives_the_files_and_config_it_describes() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    let base = flatten(&k, "busybox:kiln");
    assert!(base.join("bin/busybox").is_file());
    assert_eq!(
        std::fs::read_link(base.join("bin/sh")).unwrap(),
        Path::new("/bin/busybox")
    );

    let ctx = context(&k.dir.path().join("app"), &[
        ("Dockerfile", "FROM busybox:kiln AS build\nARG MSG=default\nWORKDIR /src\nCOPY app/ ./\nRUN echo \"$MSG\" > /src/msg && rm /bin/vi && chmod 750 /src/run.sh\nFROM busybox:kiln\nENV GREETING=hi\nCOPY --from=build /src /app\nCOPY --chown=1000:1000 <<EOF /etc/motd\nhello $GREETING\nEOF\nUSER 1000:1000\nEXPOSE 8080\nLABEL org.example=yes\nWORKDIR /app\nCMD [\"sh\", \"/app/run.sh\"]\n"),
        ("app/run.sh", "echo run\n"),
        ("app/secret.key", "do not copy"),
        (".dockerignore", "**/*.key\n"),
    ]);
    let out = k.log(&[
        "build",
        "-t",
        "app:1",
        "--build-arg",
        "MSG=from-arg",
        ctx.to_str().unwrap(),
    ]);
    assert!(
        out.contains("naming to docker.io/library/app:1 done"),
        "{out}"
    );
    let app = flatten(&k, "app:1");
    assert_eq!(
        std::fs::read_to_string(app.join("app/msg")).unwrap(),
        "from-arg\n"
    );
    assert_eq!(
        std::fs::read_to_string(app.join("app/run.sh")).unwrap(),
        "echo run\n"
    );
    assert_eq!(
        std::fs::metadata(app.join("app/run.sh"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o750
    );
    assert!(
        !app.join("app/secret.key").exists(),
        ".dockerignore keeps the key out"
    );
    assert!(
        app.join("bin/vi").exists(),
        "the deletion happened in the build stage only"
    );
    assert_eq!(
        std::fs::read_to_string(app.join("etc/motd")).unwrap(),
        "hello hi\n"
    );
    assert_eq!(std::fs::metadata(app.join("etc/motd")).unwrap().uid(), 1000);

    let build_stage = {
        k.log(&[
            "build",
            "--target",
            "build",
            "-t",
            "app:build",
            ctx.to_str().unwrap(),
        ]);
        flatten(&k, "app:build")
    };
    assert!(
        !build_stage.join("bin/vi").exists(),
        "RUN rm became a whiteout"
    );

    let inspect: serde_json::Value =
        serde_json::from_str(&k.ok(&["image", "inspect", "app:1"])).unwrap();
    let config = &inspect[0]["Config"];
    assert_eq!(config["Cmd"], serde_json::json!(["sh", "/app/run.sh"]));
    assert_eq!(config["User"], "1000:1000");
    assert_eq!(config["WorkingDir"], "/app");
    assert_eq!(
        config["Env"],
        serde_json::json!([
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "GREETING=hi"
        ]),
        "the default PATH, as BuildKit sets it"
    );
    assert_eq!(config["ExposedPorts"], serde_json::json!({"8080/tcp": {}}));
    assert_eq!(config["Labels"], serde_json::json!({"org.example": "yes"}));
}

#[test]
fn an_unchanged_context_runs_nothing_and_one_change_reruns_only_what_depends_on_it() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    let ctx = context(&k.dir.path().join("app"), &[
        ("Dockerfile", "FROM busybox:kiln\nCOPY a.txt /a.txt\nRUN cat /a.txt > /a.copy\nCOPY b.txt /b.txt\nRUN cat /b.txt > /b.copy\n"),
        ("a.txt", "a1"),
        ("b.txt", "b1"),
    ]);
    let first = k.log(&["build", "-t", "c:1", ctx.to_str().unwrap()]);
    assert_eq!(first.matches("CACHED").count(), 0, "{first}");
    let second = k.log(&["build", "-t", "c:1", ctx.to_str().unwrap()]);
    assert_eq!(
        second.matches("CACHED").count(),
        4,
        "every step comes from the cache:\n{second}"
    );
    std::fs::write(ctx.join("b.txt"), "b2").unwrap();
    let third = k.log(&["build", "-t", "c:1", ctx.to_str().unwrap()]);
    assert_eq!(
        third.matches("CACHED").count(),
        2,
        "the steps before b.txt are cached:\n{third}"
    );
    assert_eq!(third.matches("cache miss").count(), 2, "{third}");
    assert!(
        third.contains("cache miss: source file changed: b.txt"),
        "the miss names the file:\n{third}"
    );
    assert!(
        third.contains("cache miss: an earlier step changed"),
        "{third}"
    );
    assert!(first.contains("cache miss: not built before"), "{first}");
    assert_eq!(
        std::fs::read_to_string(flatten(&k, "c:1").join("b.copy")).unwrap(),
        "b2"
    );
    let no_cache = k.log(&["build", "--no-cache", "-t", "c:1", ctx.to_str().unwrap()]);
    assert_eq!(no_cache.matches("CACHED").count(), 0);
}

#[test]
fn bad_builds_fail_clearly_and_leave_no_tag() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    let outside = k.dir.path().join("outside-secret");
    std::fs::write(&outside, "secret").unwrap();
    let cases: Vec<(&str, String, &str)> = vec![
        ("failing-run", "FROM busybox:kiln\nRUN echo about to fail && exit 3\n".into(), "exited with code 3"),
        ("missing-source", "FROM busybox:kiln\nCOPY nope.txt /\n".into(), "nope.txt: not found in the build context"),
        ("unknown-base", "FROM no-such-image:1\n".into(), "no such image"),
        ("cycle", "FROM busybox:kiln AS a\nCOPY --from=b /x /x\nFROM busybox:kiln AS b\nCOPY --from=a /y /y\n".into(), "circular dependency"),
        ("symlink-out", "FROM busybox:kiln\nCOPY link /x\n".into(), "points out of the build context"),
        ("parse-error", "FROM busybox:kiln\nRUNN x\n".into(), "unknown instruction: RUNN"),
        ("lying-base", "FROM liar:1\nRUN true\n".into(), "digest mismatch"),
    ];
    // An image whose config names its layer by another diffID: unpacking it is refused.
    let store = kiln_image::store::Store::open(k.root()).unwrap();
    let real = store.resolve("busybox:kiln").unwrap();
    let mut config: serde_json::Value = serde_json::from_slice(&real.config_bytes).unwrap();
    config["rootfs"]["diff_ids"][0] = format!("sha256:{}", "0".repeat(64)).into();
    let bytes = serde_json::to_vec(&config).unwrap();
    let mut descriptor = real.manifest.config().clone();
    descriptor.set_digest(store.write_blob_bytes(&bytes).unwrap());
    descriptor.set_size(bytes.len() as u64);
    let liar = store
        .write_manifest(descriptor, real.manifest.layers().clone())
        .unwrap();
    store
        .tag(&kiln_image::Reference::parse("liar:1").unwrap(), &liar)
        .unwrap();
    for (name, dockerfile, why) in cases {
        let ctx = context(&k.dir.path().join(name), &[("Dockerfile", &dockerfile)]);
        std::os::unix::fs::symlink(&outside, ctx.join("link")).unwrap();
        let out = k.run(&["build", "-t", &format!("bad:{name}"), ctx.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{name} succeeded");
        assert!(
            stderr.contains(why),
            "{name}: expected {why:?} in:\n{stderr}"
        );
        assert!(!k.ok(&["images"]).contains("bad "), "{name} left a tag");
        if name == "lying-base" {
            let snapshot = k.root().join("snapshots").join("0".repeat(64));
            assert!(!snapshot.exists(), "the wrong layer is not kept");
        }
        if name == "failing-run" {
            assert!(
                stderr.contains("line 2") && stderr.contains("about to fail"),
                "the step and its output tail: {stderr}"
            );
            // Progress is on standard error, as docker's; the failed step says ERROR.
            assert!(stdout.is_empty(), "{stdout}");
            assert!(stderr.contains("ERROR: line 2"), "{stderr}");
        }
    }
}

#[test]
fn independent_stages_run_at_the_same_time() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    // Each stage records when its sleep started and ended (system uptime, shared by all
    // namespaces); the intervals overlap only if the stages ran at once.
    let stage = |name: &str| {
        format!("FROM busybox:kiln AS {name}\nRUN cut -d' ' -f1 /proc/uptime > /start && sleep 1 && cut -d' ' -f1 /proc/uptime > /end\n")
    };
    let dockerfile = format!("{}{}FROM busybox:kiln\nCOPY --from=a /start /a.start\nCOPY --from=a /end /a.end\nCOPY --from=b /start /b.start\nCOPY --from=b /end /b.end\n", stage("a"), stage("b"));
    let ctx = context(
        &k.dir.path().join("parallel"),
        &[("Dockerfile", &dockerfile)],
    );
    k.log(&["build", "-t", "par:1", ctx.to_str().unwrap()]);
    let flat = flatten(&k, "par:1");
    let t = |f: &str| {
        std::fs::read_to_string(flat.join(f))
            .unwrap()
            .trim()
            .parse::<f64>()
            .unwrap()
    };
    let (a0, a1, b0, b1) = (t("a.start"), t("a.end"), t("b.start"), t("b.end"));
    assert!(
        a0 < b1 && b0 < a1,
        "stage a ran {a0}..{a1}, stage b {b0}..{b1}: they did not overlap"
    );
}

#[test]
fn output_writes_an_archive_peers_read() {
    require_root!();
    require_tool!("skopeo");
    let k = Kiln::new();
    build_busybox(&k);
    let ctx = context(
        &k.dir.path().join("out"),
        &[("Dockerfile", "FROM busybox:kiln\nRUN echo hi > /hi\n")],
    );
    let tar = k.dir.path().join("image.tar");
    let iid = k.dir.path().join("iid");
    k.log(&[
        "build",
        "-t",
        "out:1",
        "--iidfile",
        iid.to_str().unwrap(),
        "--output",
        &format!("type=oci,dest={}", tar.display()),
        ctx.to_str().unwrap(),
    ]);
    let raw = kiln_testkit::run_tool(
        "skopeo",
        &[
            "inspect",
            "--raw",
            &format!("oci-archive:{}", tar.display()),
        ],
    );
    assert!(
        raw.contains("tar+gzip"),
        "layers are compressed for export: {raw}"
    );
    let config: serde_json::Value = serde_json::from_str(&kiln_testkit::run_tool(
        "skopeo",
        &[
            "inspect",
            "--config",
            &format!("docker-archive:{}", tar.display()),
        ],
    ))
    .unwrap();
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 3);
    let id = std::fs::read_to_string(&iid).unwrap();
    assert_eq!(k.ok(&["images", "-q", "--no-trunc", "out:1"]).trim(), id);
}

#[test]
fn with_source_date_epoch_two_builds_give_the_same_image_whichever_the_snapshotter() {
    require_root!();
    let mut digests = Vec::new();
    for snapshotter in ["overlay", "copy"] {
        // A fresh store and a fresh copy of the context each time (new inodes and times).
        let k = Kiln::new();
        let ctx = context(&k.dir.path().join("ctx"), &[
            ("Dockerfile", "FROM scratch AS base\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nRUN mkdir -p /old/sub /gone /tofile && echo 1 > /old/sub/f && echo k > /keep && echo d > /del && echo g > /gone/g && echo t > /tofile/t\nFROM base\nCOPY app/ /app/\nRUN echo made > /app/made && mkdir -p /var/x && rm /del && rm -rf /gone /old /tofile && mkdir /old && echo new > /old/n && echo f > /tofile && chmod 600 /keep && ln /app/made /app/hard && ln -s /app/made /app/soft && mkfifo /app/fifo\n"),
            ("app/a", "a"),
        ]);
        std::fs::copy(busybox(), ctx.join("busybox")).unwrap();
        let out = k
            .cmd(&["build", "-t", "repro:1", ctx.to_str().unwrap()])
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .env("KILN_SNAPSHOTTER", snapshotter)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let inspect: serde_json::Value =
            serde_json::from_str(&k.ok(&["image", "inspect", "repro:1"])).unwrap();
        digests.push((
            inspect[0]["Id"].clone(),
            inspect[0]["Descriptor"]["digest"].clone(),
        ));
        let flat = flatten(&k, "repro:1");
        for gone in ["del", "gone", "old/sub", "tofile/t"] {
            assert!(
                !flat.join(gone).exists(),
                "{snapshotter}: {gone} was removed"
            );
        }
        assert!(flat.join("old/n").is_file() && flat.join("tofile").is_file());
        let keep = std::fs::metadata(flat.join("keep")).unwrap();
        assert_eq!(keep.permissions().mode() & 0o777, 0o600, "{snapshotter}");
        assert_eq!(
            std::fs::metadata(flat.join("app/hard")).unwrap().ino(),
            std::fs::metadata(flat.join("app/made")).unwrap().ino(),
            "{snapshotter}: a hard link stays one"
        );
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    assert_eq!(
        digests[0], digests[1],
        "the same image ID and manifest digest from overlayfs and from copies"
    );
    let k = Kiln::new();
    // SOURCE_DATE_EPOCH that is not a number of seconds is refused, not ignored.
    let scratch = context(
        &k.dir.path().join("epoch"),
        &[("Dockerfile", "FROM scratch\n")],
    );
    let out = k
        .cmd(&["build", scratch.to_str().unwrap()])
        .env("SOURCE_DATE_EPOCH", "yesterday")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("SOURCE_DATE_EPOCH=yesterday"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ctx = context(
        &k.dir.path().join("zfs"),
        &[("Dockerfile", "FROM scratch\n")],
    );
    let out = k
        .cmd(&["build", ctx.to_str().unwrap()])
        .env("KILN_SNAPSHOTTER", "zfs")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("KILN_SNAPSHOTTER=zfs"),
        "{err}"
    );
}

#[test]
fn a_context_tar_or_a_lone_dockerfile_comes_on_stdin_and_json_progress_describes_the_steps() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    let ctx = context(
        &k.dir.path().join("ctx"),
        &[
            ("Dockerfile", "FROM busybox:kiln\nCOPY f /f\nRUN cat /f\n"),
            ("f", "from the tar\n"),
        ],
    );
    let tar = std::process::Command::new("tar")
        .arg("-C")
        .arg(&ctx)
        .args(["-czf", "-", "."])
        .output()
        .unwrap()
        .stdout;
    let run = |args: &[&str], input: &[u8]| {
        use std::io::Write;
        let mut child = k
            .cmd(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // JSON events on standard output; plain progress on standard error.
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let out = run(&["build", "--progress", "json", "-t", "stdin:1", "-"], &tar);
    let events: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "output" && e["line"] == "from the tar"),
        "{out}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "miss" && e["reason"] == "not built before"),
        "{out}"
    );
    let last = events.last().unwrap();
    assert_eq!(last["type"], "image");
    assert_eq!(
        last["tags"],
        serde_json::json!(["docker.io/library/stdin:1"])
    );

    let out = run(
        &["build", "-t", "stdin:2", "-"],
        b"FROM busybox:kiln\nRUN echo no context\n",
    );
    assert!(out.contains("no context"), "{out}");
}

#[test]
fn users_and_groups_are_resolved_by_name_from_the_image() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    let dockerfile = "FROM busybox:kiln\nCOPY <<EOF /etc/passwd\nroot:x:0:0:root:/root:/bin/sh\napp:x:1500:1600:app:/home/app:/bin/sh\nEOF\nCOPY <<EOF /etc/group\nroot:x:0:\nstaff:x:1700:\napp:x:1600:\nEOF\nCOPY --chown=app:staff f /owned\nCOPY --chown=app f /user-only\nUSER app\nRUN echo uid=$(id -u) gid=$(id -g)\n";
    let ctx = context(
        &k.dir.path().join("users"),
        &[("Dockerfile", dockerfile), ("f", "x")],
    );
    let out = k.log(&["build", "-t", "users:1", ctx.to_str().unwrap()]);
    assert!(
        out.contains("uid=1500 gid=1600"),
        "USER app runs as app with its primary group:\n{out}"
    );
    let flat = flatten(&k, "users:1");
    let owner = |p: &str| {
        let m = std::fs::metadata(flat.join(p)).unwrap();
        (m.uid(), m.gid())
    };
    assert_eq!(owner("owned"), (1500, 1700));
    assert_eq!(
        owner("user-only"),
        (1500, 1500),
        "a user without a group: gid = uid, as Docker"
    );
    let ctx = context(
        &k.dir.path().join("nouser"),
        &[
            ("Dockerfile", "FROM busybox:kiln\nCOPY --chown=ghost f /f\n"),
            ("f", "x"),
        ],
    );
    let out = k.run(&["build", ctx.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unable to find user ghost"));
}

#[test]
fn a_changed_copy_starts_from_its_previous_result_without_touching_it() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    let ctx = context(&k.dir.path().join("inc"), &[
        ("Dockerfile", "FROM busybox:kiln\nCOPY src/ /app/\nCOPY <<EOF /app/note\nfrom a heredoc\nEOF\nRUN cat /app/a /app/b > /app/ab\n"),
        ("src/a", "a1"),
        ("src/b", "b1"),
        ("src/sub/c", "c1"),
    ]);
    k.log(&["build", "-t", "inc:1", ctx.to_str().unwrap()]);
    std::fs::write(ctx.join("src/b"), "b2").unwrap();
    std::fs::write(ctx.join("src/sub/d"), "d1").unwrap();
    let out = k.log(&["build", "-t", "inc:2", ctx.to_str().unwrap()]);
    assert!(
        out.contains("cache miss: source file changed: src/b"),
        "{out}"
    );
    let new = flatten(&k, "inc:2");
    let read = |root: &Path, p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    assert_eq!(
        (
            read(&new, "app/a"),
            read(&new, "app/b"),
            read(&new, "app/sub/c"),
            read(&new, "app/sub/d"),
            read(&new, "app/ab")
        ),
        (
            "a1".into(),
            "b2".into(),
            "c1".into(),
            "d1".into(),
            "a1b2".into()
        )
    );
    let old = flatten(&k, "inc:1");
    assert_eq!(read(&old, "app/b"), "b1", "the earlier image is untouched");
    assert!(!old.join("app/sub/d").exists());
    // A removed source means a fresh copy, and the file is gone.
    std::fs::remove_file(ctx.join("src/a")).unwrap();
    let out = k.run(&["build", "-t", "inc:3", ctx.to_str().unwrap()]);
    assert!(!out.status.success(), "the RUN needs /app/a");
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox:kiln\nCOPY src/ /app/\n",
    )
    .unwrap();
    k.log(&["build", "-t", "inc:4", ctx.to_str().unwrap()]);
    assert!(!flatten(&k, "inc:4").join("app/a").exists());
}

#[test]
fn add_unpacks_local_tar_archives_and_copy_does_not() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    let ctx = context(&k.dir.path().join("add"), &[("Dockerfile", "FROM busybox:kiln\nADD plain.tar /x/\nADD packed.tar.gz /y/\nADD packed.tar.zst /z/\nADD packed.tar.bz2 /b/\nADD packed.tar.xz /e/\nCOPY plain.tar /copied/\nADD notes.txt /n/\n"), ("notes.txt", "just text")]);
    let payload = k.dir.path().join("payload");
    std::fs::create_dir_all(payload.join("dir")).unwrap();
    std::fs::write(payload.join("dir/file"), "inside").unwrap();
    for (name, flag) in [
        ("plain.tar", "--no-auto-compress"),
        ("packed.tar.gz", "--gzip"),
        ("packed.tar.zst", "--zstd"),
        ("packed.tar.bz2", "--bzip2"),
        ("packed.tar.xz", "--xz"),
    ] {
        let status = std::process::Command::new("tar")
            .arg("-C")
            .arg(&payload)
            .args([flag, "-cf"])
            .arg(ctx.join(name))
            .arg("dir")
            .status()
            .unwrap();
        assert!(status.success(), "tar {flag}");
    }
    k.log(&["build", "-t", "add:1", ctx.to_str().unwrap()]);
    let flat = flatten(&k, "add:1");
    for d in ["x", "y", "z", "b", "e"] {
        assert_eq!(
            std::fs::read_to_string(flat.join(d).join("dir/file")).unwrap(),
            "inside",
            "ADD into /{d}"
        );
    }
    assert!(
        flat.join("copied/plain.tar").is_file(),
        "COPY keeps the archive as it is"
    );
    assert_eq!(
        std::fs::read_to_string(flat.join("n/notes.txt")).unwrap(),
        "just text"
    );
}

#[test]
fn builder_prune_empties_the_cache_and_the_next_build_runs_again() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    let ctx = context(
        &k.dir.path().join("p"),
        &[("Dockerfile", "FROM busybox:kiln\nRUN echo x > /x\n")],
    );
    k.log(&["build", "-t", "p:1", ctx.to_str().unwrap()]);
    assert!(k
        .log(&["build", "-t", "p:1", ctx.to_str().unwrap()])
        .contains("CACHED"));
    let out = k.ok(&["builder", "prune", "-a", "-f"]);
    assert!(out.contains("Total reclaimed space:"), "{out}");
    assert!(!k.root().join("snapshots").exists() && !k.root().join("buildcache").exists());
    let again = k.log(&["build", "-t", "p:1", ctx.to_str().unwrap()]);
    assert!(
        !again.contains("CACHED") && again.contains("cache miss"),
        "{again}"
    );
    assert_eq!(
        std::fs::read_to_string(flatten(&k, "p:1").join("x")).unwrap(),
        "x\n"
    );
}

#[test]
fn onbuild_triggers_run_in_the_child_and_proxy_args_need_no_declaration() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    let parent = context(
        &k.dir.path().join("parent"),
        &[(
            "Dockerfile",
            "FROM busybox:kiln\nONBUILD COPY note /note\nONBUILD RUN echo triggered > /t\n",
        )],
    );
    k.log(&["build", "-t", "parent:1", parent.to_str().unwrap()]);
    let inspect: serde_json::Value =
        serde_json::from_str(&k.ok(&["image", "inspect", "parent:1"])).unwrap();
    assert_eq!(
        inspect[0]["Config"]["OnBuild"],
        serde_json::json!(["COPY note /note", "RUN echo triggered > /t"])
    );
    let child = context(
        &k.dir.path().join("child"),
        &[
            ("Dockerfile", "FROM parent:1\nRUN echo proxy=$HTTP_PROXY\n"),
            ("note", "from the child's context"),
        ],
    );
    let out = k.log(&[
        "build",
        "-t",
        "child:1",
        "--build-arg",
        "HTTP_PROXY=http://proxy.invalid:3128",
        child.to_str().unwrap(),
    ]);
    assert!(out.contains("proxy=http://proxy.invalid:3128"), "{out}");
    let flat = flatten(&k, "child:1");
    assert_eq!(
        std::fs::read_to_string(flat.join("t")).unwrap(),
        "triggered\n"
    );
    assert_eq!(
        std::fs::read_to_string(flat.join("note")).unwrap(),
        "from the child's context"
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&k.ok(&["image", "inspect", "child:1"])).unwrap();
    assert!(
        inspect[0]["Config"]["OnBuild"].is_null(),
        "triggers are not inherited by grandchildren"
    );
    let history = k.ok(&["history", "--no-trunc", "child:1"]);
    assert!(
        !history.contains("proxy.invalid"),
        "proxy values stay out of the history"
    );
}

#[test]
fn secrets_reach_run_steps_and_nothing_else() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    let secret = k.dir.path().join("token");
    std::fs::write(&secret, "s3cr3t-value").unwrap();
    let dockerfile = "FROM busybox:kiln\nRUN --mount=type=secret,id=token cat /run/secrets/token > /used-file\nRUN --mount=type=secret,id=token,env=TOKEN echo \"$TOKEN\" > /used-env\nRUN --mount=type=secret,id=absent echo optional\n";
    let ctx = context(&k.dir.path().join("s"), &[("Dockerfile", dockerfile)]);
    let out = k.log(&[
        "build",
        "-t",
        "s:1",
        "--secret",
        &format!("id=token,src={}", secret.display()),
        ctx.to_str().unwrap(),
    ]);
    assert!(
        !out.contains("s3cr3t-value"),
        "the value is not printed: {out}"
    );
    let flat = flatten(&k, "s:1");
    assert_eq!(
        std::fs::read_to_string(flat.join("used-file")).unwrap(),
        "s3cr3t-value"
    );
    assert_eq!(
        std::fs::read_to_string(flat.join("used-env")).unwrap(),
        "s3cr3t-value\n"
    );
    assert!(
        !flat.join("run").exists(),
        "no mount point is left in a layer"
    );
    assert!(!k.ok(&["history", "--no-trunc", "s:1"]).contains("s3cr3t"));
    let required = context(&k.dir.path().join("r"), &[("Dockerfile", "FROM busybox:kiln\nRUN --mount=type=secret,id=missing,required cat /run/secrets/missing\n")]);
    let out = k.run(&["build", required.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("secret \"missing\" is required"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn copy_follows_the_images_symlinks_in_the_destination() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    let dockerfile = "FROM busybox:kiln\nRUN mkdir -p /srv/data /usr/local && ln -s /srv /app && ln -s ../../srv/data /usr/local/data\nCOPY f /app/\nCOPY f /usr/local/data/g\nCOPY f /app/new/\n";
    let ctx = context(
        &k.dir.path().join("links"),
        &[("Dockerfile", dockerfile), ("f", "file")],
    );
    k.log(&["build", "-t", "links:1", ctx.to_str().unwrap()]);
    let flat = flatten(&k, "links:1");
    assert_eq!(
        std::fs::read_link(flat.join("app")).unwrap(),
        Path::new("/srv"),
        "the link survives"
    );
    assert_eq!(std::fs::read_to_string(flat.join("srv/f")).unwrap(), "file");
    assert_eq!(
        std::fs::read_to_string(flat.join("srv/data/g")).unwrap(),
        "file"
    );
    assert_eq!(
        std::fs::read_to_string(flat.join("srv/new/f")).unwrap(),
        "file"
    );
}

#[test]
fn copy_exclude_parents_and_link() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    let files = [
        ("a/keep.txt", "k"),
        ("a/skip.md", "s"),
        ("b/deep/x.txt", "x"),
    ];
    let mut all: Vec<(&str, &str)> = files.to_vec();
    let dockerfile = "FROM busybox:kiln\nCOPY --exclude=*.md a /ex/\nCOPY --parents a/keep.txt b/deep/x.txt /par/\nCOPY --link b /linked/\n";
    all.push(("Dockerfile", dockerfile));
    let ctx = context(&k.dir.path().join("flags"), &all);
    k.log(&["build", "-t", "flags:1", ctx.to_str().unwrap()]);
    let flat = flatten(&k, "flags:1");
    assert!(
        flat.join("ex/keep.txt").exists() && !flat.join("ex/skip.md").exists(),
        "--exclude"
    );
    assert!(
        flat.join("par/a/keep.txt").exists() && flat.join("par/b/deep/x.txt").exists(),
        "--parents"
    );
    assert!(flat.join("linked/deep/x.txt").exists());

    // A changed excluded file does not miss the cache; a linked COPY survives a new base.
    std::fs::write(ctx.join("a/skip.md"), "changed").unwrap();
    let again = k.log(&["build", "-t", "flags:1", ctx.to_str().unwrap()]);
    assert_eq!(again.matches("CACHED").count(), 3, "{again}");
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM busybox:kiln\nRUN echo new-base > /nb\n{}",
            &dockerfile["FROM busybox:kiln\n".len()..]
        ),
    )
    .unwrap();
    let rebased = k.log(&["build", "-t", "flags:2", ctx.to_str().unwrap()]);
    let linked_step = rebased
        .lines()
        .find(|l| l.contains("COPY --link"))
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    assert!(
        rebased.contains(&format!("{linked_step} CACHED")),
        "the --link COPY is cached on the new base:\n{rebased}"
    );
}

#[test]
fn cache_mounts_live_in_a_directory_ci_can_carry_between_runners() {
    require_root!();
    let carried = tempfile::tempdir().unwrap();
    let dockerfile = "FROM busybox:kiln\nRUN --mount=type=cache,target=/cache,id=deps ls /cache; echo run >> /cache/log; wc -l < /cache/log\n";
    let mut counts = Vec::new();
    for _ in 0..2 {
        // Each run on a fresh store, as on a fresh CI runner; only the directory is kept.
        let k = Kiln::new();
        build_busybox(&k);
        let ctx = context(&k.dir.path().join("cm"), &[("Dockerfile", dockerfile)]);
        let out = k.log(&[
            "build",
            "--cache-mount-dir",
            carried.path().to_str().unwrap(),
            ctx.to_str().unwrap(),
        ]);
        counts.push(
            out.lines()
                .filter_map(|l| l.split_whitespace().next_back()?.parse::<u32>().ok())
                .next_back()
                .unwrap_or(0),
        );
    }
    assert_eq!(
        counts,
        [1, 2],
        "the second runner sees what the first left in the cache mount"
    );
}

/// A one-file HTTP server on 127.0.0.1 for as many requests as asked; returns its address.
fn serve(body: &'static [u8], requests: usize) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let mut stream = stream.unwrap();
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
        }
    });
    addr
}

#[test]
fn add_downloads_urls_and_checks_their_checksum() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    let body: &'static [u8] = b"downloaded content\n";
    let good = format!("sha256:{}", {
        use sha2::Digest;
        format!("{:x}", sha2::Sha256::digest(body))
    });
    let addr = serve(body, 8);
    let dockerfile = format!("FROM busybox:kiln\nADD --checksum={good} http://{addr}/files/tool.txt /opt/\nADD http://{addr}/files/other.txt /opt/renamed\n");
    let ctx = context(&k.dir.path().join("url"), &[("Dockerfile", &dockerfile)]);
    k.log(&["build", "-t", "url:1", ctx.to_str().unwrap()]);
    let flat = flatten(&k, "url:1");
    assert_eq!(std::fs::read(flat.join("opt/tool.txt")).unwrap(), body);
    assert_eq!(std::fs::read(flat.join("opt/renamed")).unwrap(), body);
    assert_eq!(
        std::fs::metadata(flat.join("opt/tool.txt"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    // The same content again: the steps are cached.
    let again = k.log(&["build", "-t", "url:1", ctx.to_str().unwrap()]);
    assert_eq!(again.matches("CACHED").count(), 2, "{again}");

    let bad = "sha256:".to_string() + &"0".repeat(64);
    let ctx = context(
        &k.dir.path().join("badsum"),
        &[(
            "Dockerfile",
            &format!(
                "FROM busybox:kiln\nADD --checksum={bad} http://{addr}/files/tool.txt /opt/\n"
            ),
        )],
    );
    let out = k.run(&["build", "-t", "badsum:1", ctx.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("checksum mismatch"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!k.ok(&["images"]).contains("badsum"));
}

#[test]
fn run_bind_mounts_read_stages_and_the_context_and_their_content_is_in_the_cache_key() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    let ctx = context(&k.dir.path().join("bind"), &[
        ("Dockerfile", "FROM busybox:kiln AS tools\nRUN mkdir /out && echo built > /out/artifact\n\nFROM busybox:kiln\nRUN --mount=type=bind,from=tools,source=/out,target=/mnt cat /mnt/artifact > /from-stage\nRUN --mount=type=bind,source=data,target=/d,rw cat /d/f > /from-context && echo scribble > /d/f && touch /d/new\nRUN --mount=type=bind,source=data/f,target=/one cat /one > /one-file\n"),
        ("data/f", "v1"),
    ]);
    k.log(&["build", "-t", "bind:1", ctx.to_str().unwrap()]);
    let flat = flatten(&k, "bind:1");
    let read = |root: &Path, p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    assert_eq!(read(&flat, "from-stage"), "built\n");
    assert_eq!(read(&flat, "from-context"), "v1");
    assert_eq!(read(&flat, "one-file"), "v1");
    assert_eq!(read(&ctx, "data/f"), "v1", "rw writes are thrown away");
    assert!(!ctx.join("data/new").exists(), "rw writes are thrown away");
    for gone in ["mnt/artifact", "d", "one"] {
        assert!(!flat.join(gone).exists(), "{gone} must not reach a layer");
    }

    let again = k.log(&["build", "-t", "bind:2", ctx.to_str().unwrap()]);
    assert!(!again.contains("cache miss"), "{again}");
    std::fs::write(ctx.join("data/f"), "v2").unwrap();
    let changed = k.log(&["build", "-t", "bind:3", ctx.to_str().unwrap()]);
    assert!(
        changed.contains("cache miss: source file changed: data/f"),
        "{changed}"
    );
    let flat = flatten(&k, "bind:3");
    assert_eq!(read(&flat, "from-stage"), "built\n");
    assert_eq!(read(&flat, "from-context"), "v2");
    assert_eq!(read(&flat, "one-file"), "v2");

    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox:kiln\nRUN --mount=type=bind,source=missing,target=/m true\n",
    )
    .unwrap();
    let out = k.run(&["build", ctx.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("missing"), "{err}");
}

#[test]
fn the_build_cache_keeps_to_its_size_least_recently_used_first_and_survives_rmi() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    let ctx = |name: &str| {
        context(
            &k.dir.path().join(name),
            &[(
                "Dockerfile",
                &format!("FROM busybox:kiln\nRUN head -c 3000000 /dev/zero > /{name}\n"),
            )],
        )
    };
    let build = |name: &str| {
        k.log(&[
            "build",
            "-t",
            &format!("{name}:1"),
            ctx(name).to_str().unwrap(),
        ])
    };
    build("a");
    build("b");
    // Removing an image keeps the layers the build cache names.
    k.ok(&["rmi", "b:1"]);
    assert!(build("b").contains("CACHED"));
    assert!(
        build("a").contains("CACHED"),
        "a is now the most recently used"
    );

    let out = k.ok(&["builder", "prune", "--keep-storage", "4MB"]);
    assert!(out.contains("Total reclaimed space:"), "{out}");
    assert!(build("a").contains("CACHED"), "the most recent entry stays");
    let b = build("b");
    assert!(!b.contains("CACHED") && b.contains("cache miss"), "{b}");

    // Every build keeps the cache under KILN_BUILD_CACHE_LIMIT.
    let out = k
        .cmd(&["build", "-t", "c:1", ctx("c").to_str().unwrap()])
        .env("KILN_BUILD_CACHE_LIMIT", "4MB")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && text.contains("trimmed the build cache"),
        "{text}"
    );
    assert!(build("c").contains("CACHED"));
    let a = build("a");
    assert!(!a.contains("CACHED"), "{a}");
    assert_eq!(
        std::fs::metadata(flatten(&k, "a:1").join("a"))
            .unwrap()
            .len(),
        3_000_000
    );
}

#[test]
fn progress_auto_draws_live_lines_on_a_terminal_and_plain_lines_elsewhere() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    let ctx = context(
        &k.dir.path().join("tty"),
        &[(
            "Dockerfile",
            "FROM busybox:kiln\nRUN for i in 1 2 3; do echo line $i; sleep 0.2; done\n",
        )],
    );
    // `script` gives kiln a terminal, as a developer's shell does.
    let command = format!(
        "{} build -t tty:1 {}",
        env!("CARGO_BIN_EXE_kiln"),
        ctx.display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("KILN_ROOT", k.root())
        .output()
        .expect("script (bsdutils)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("\x1b["), "live lines are drawn: {text}");
    assert!(
        text.contains("#2 [2/2] RUN for i in 1 2 3; do echo line $i; sleep 0.2; done (cache miss: not built before) DONE"),
        "{text}"
    );
    let plain = k.log(&["build", "-t", "tty:1", ctx.to_str().unwrap()]);
    assert!(
        plain.contains("#2 CACHED") && !plain.contains('\x1b'),
        "{plain}"
    );
}

#[test]
fn a_build_prints_the_build_checks_warnings_and_goes_on() {
    require_root!();
    let k = Kiln::new();
    let ctx = context(
        &k.dir.path().join("warn"),
        &[
            ("Dockerfile", "FROM scratch AS Base\nCOPY f /f\n"),
            ("f", "x"),
        ],
    );
    let out = k.run(&["build", "-t", "warn:1", ctx.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("WARNING: StageNameCasing - "), "{err}");
    assert!(
        err.contains("Stage name 'Base' should be lowercase"),
        "{err}"
    );
}

#[test]
fn a_file_rewritten_in_place_with_its_mtime_set_back_misses_the_cache() {
    require_root!();
    let k = Kiln::new();
    let ctx = context(
        &k.dir.path().join("inplace"),
        &[
            ("Dockerfile", "FROM scratch\nCOPY f.txt /f.txt\n"),
            ("f.txt", "aaaa"),
        ],
    );
    let file = ctx.join("f.txt");
    let past = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(past)
        .unwrap();
    // Older than a second: a stat kiln trusts and remembers.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    k.log(&["build", "-t", "f:1", ctx.to_str().unwrap()]);
    let inode = std::fs::metadata(&file).unwrap().ino();
    {
        use std::io::Write;
        let mut f = std::fs::File::options().write(true).open(&file).unwrap();
        f.write_all(b"bbbb").unwrap();
        f.set_modified(past).unwrap();
    }
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!(
        (meta.ino(), meta.len()),
        (inode, 4),
        "same inode, same size"
    );
    let out = k.log(&[
        "build",
        "--progress",
        "plain",
        "-t",
        "f:1",
        ctx.to_str().unwrap(),
    ]);
    assert!(
        out.contains("cache miss: source file changed: f.txt"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(flatten(&k, "f:1").join("f.txt")).unwrap(),
        "bbbb"
    );
}

#[test]
fn a_reader_that_goes_away_neither_hangs_nor_fails_the_build() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    // Two stages printing enough to fill the pipe after `head` has gone.
    let ctx = context(
        &k.dir.path().join("head"),
        &[(
            "Dockerfile",
            "FROM busybox:kiln AS a\nRUN seq 1 20000\nFROM busybox:kiln\nRUN seq 1 20000\nCOPY --from=a /bin/busybox /bb\n",
        )],
    );
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} build --progress plain -t headed:1 {} | head -n 1",
            env!("CARGO_BIN_EXE_kiln"),
            ctx.display()
        ))
        .env("KILN_ROOT", k.root())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        // A liveness bound, far above the build's time: it used to hang forever.
        assert!(
            start.elapsed() < std::time::Duration::from_secs(120),
            "the build hung"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The build went on to its end: the image is there.
    assert!(k.ok(&["images"]).contains("headed"));
}

#[test]
fn run_has_the_users_home_and_supplementary_groups() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    let ctx = context(
        &k.dir.path().join("home"),
        &[(
            "Dockerfile",
            "FROM busybox:kiln
RUN mkdir -p /etc /home/app && printf 'root:x:0:0:root:/root:/bin/sh\\napp:x:1000:1000:app:/home/app:/bin/sh\\n' > /etc/passwd && printf 'root:x:0:\\napp:x:1000:\\nwheel:x:10:app\\naudio:x:29:root,app\\n' > /etc/group && chown 1000:1000 /home/app
USER app
RUN echo \"home=$HOME groups=$(id -G)\" && mkdir -p ~/.config && test -d /home/app/.config
USER root
RUN echo \"roothome=$HOME\"
USER app:wheel
RUN echo \"explicit=$(id -G)\"
",
        )],
    );
    let out = k.log(&[
        "build",
        "--progress",
        "plain",
        "-t",
        "home:1",
        ctx.to_str().unwrap(),
    ]);
    assert!(out.contains("home=/home/app groups=1000 10 29"), "{out}");
    assert!(out.contains("roothome=/root"), "{out}");
    // A group named with USER is the only one, as in runc.
    assert!(out.contains("explicit=10\n"), "{out}");
}

#[test]
fn workdir_is_made_as_the_user_and_joined_as_buildkit_joins_it() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    let ctx = context(
        &k.dir.path().join("workdir"),
        &[(
            "Dockerfile",
            "FROM busybox:kiln
RUN mkdir -p /etc /home && printf 'root:x:0:0:root:/root:/bin/sh\\napp:x:1000:1000:app:/home/app:/bin/sh\\n' > /etc/passwd
USER app
WORKDIR /home/app/project
RUN touch x && pwd
USER root
WORKDIR /a
WORKDIR b
WORKDIR ../c
",
        )],
    );
    let out = k.log(&[
        "build",
        "--progress",
        "plain",
        "-t",
        "wd:1",
        ctx.to_str().unwrap(),
    ]);
    assert!(out.contains("/home/app/project\n"), "{out}");
    let flat = flatten(&k, "wd:1");
    let dirs = [
        ("home/app", 1000),
        ("home/app/project", 1000),
        ("a/b", 0),
        ("a/c", 0),
    ];
    for (dir, owner) in dirs {
        let meta =
            std::fs::metadata(flat.join(dir)).unwrap_or_else(|_| panic!("{dir} is in the image"));
        assert!(meta.is_dir(), "{dir}");
        assert_eq!(meta.uid(), owner, "{dir}");
    }
    assert_eq!(
        std::fs::metadata(flat.join("home/app/project/x"))
            .unwrap()
            .uid(),
        1000
    );
    let inspect = k.ok(&["image", "inspect", "wd:1"]);
    assert!(inspect.contains("\"WorkingDir\": \"/a/c\""), "{inspect}");
    // A rebuild takes every WORKDIR from the cache.
    let again = k.log(&[
        "build",
        "--progress",
        "plain",
        "-t",
        "wd:1",
        ctx.to_str().unwrap(),
    ]);
    assert!(!again.contains("cache miss"), "{again}");
}

#[test]
fn two_fully_cached_rebuilds_give_the_same_image_and_leave_nothing_dangling() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    let ctx = context(
        &k.dir.path().join("same"),
        &[
            (
                "Dockerfile",
                "FROM busybox:kiln\nCOPY f /f\nRUN echo built > /b\nENV X=1\nLABEL a=b\n",
            ),
            ("f", "f"),
        ],
    );
    let id = |out: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix("writing image "))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("no image ID in {out}"))
            .to_string()
    };
    let first = id(&k.log(&["build", "-t", "same:1", ctx.to_str().unwrap()]));
    // Cached steps keep the time they ran, whenever the rebuild is.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = id(&k.log(&["build", "-t", "same:1", ctx.to_str().unwrap()]));
    let third = id(&k.log(&["build", "-t", "same:1", ctx.to_str().unwrap()]));
    assert_eq!(first, second);
    assert_eq!(second, third);
    let dangling = k.ok(&["images", "-q", "--filter", "dangling=true"]);
    assert_eq!(dangling.trim(), "", "a dangling image");
    // A step that runs again takes a new time: a new image.
    std::fs::write(ctx.join("f"), "g").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let changed = id(&k.log(&["build", "-t", "same:1", ctx.to_str().unwrap()]));
    assert_ne!(changed, first);
}

#[test]
fn platform_args_are_set_as_buildkit_sets_them() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    let ctx = context(
        &k.dir.path().join("platform"),
        &[(
            "Dockerfile",
            "ARG TARGETARCH\nFROM busybox:kiln\nARG TARGETPLATFORM\nARG TARGETOS\nARG TARGETARCH\nARG BUILDPLATFORM\nRUN echo \"target=$TARGETPLATFORM os=$TARGETOS arch=$TARGETARCH build=$BUILDPLATFORM\"\nRUN echo \"undeclared=${BUILDARCH:-unset}\"\n",
        )],
    );
    let out = k.log(&["build", "--progress", "plain", ctx.to_str().unwrap()]);
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    assert!(
        out.contains(&format!(
            "target=linux/{arch} os=linux arch={arch} build=linux/{arch}"
        )),
        "{out}"
    );
    // Global only: a stage sees one it declares.
    assert!(out.contains("undeclared=unset"), "{out}");
}

#[test]
fn run_heredocs_feed_the_command_as_buildkit_does() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    let dockerfile = [
        "FROM busybox:kiln",
        "ENV WHO=kiln",
        "RUN <<EOF sh",
        "echo \"from sh: $WHO\"",
        "EOF",
        "RUN cat > /greeting <<EOF && cat /greeting",
        "hello $WHO",
        "EOF",
        "RUN <<'EOF' sh",
        "echo 'literal: $WHO'",
        "EOF",
        "RUN <<EOF",
        "#!/bin/sh",
        "echo \"a script run as a file: $0\"",
        "EOF",
        "RUN <<EOF",
        "echo \"lone: $WHO\"",
        "EOF",
        "",
    ]
    .join("\n");
    let ctx = context(
        &k.dir.path().join("heredocs"),
        &[("Dockerfile", &dockerfile)],
    );
    let out = k.log(&[
        "build",
        "--progress",
        "plain",
        "-t",
        "docs:1",
        ctx.to_str().unwrap(),
    ]);
    for want in [
        "from sh: kiln",
        "hello kiln",
        "literal: $WHO",
        "a script run as a file: /dev/pipes/EOF",
        "lone: kiln",
    ] {
        assert!(out.contains(want), "{want:?} in {out}");
    }
    assert_eq!(
        std::fs::read_to_string(flatten(&k, "docs:1").join("greeting")).unwrap(),
        "hello kiln\n"
    );
}

/// `path mode uid:gid` of each path in `flat`, as the test's expectations read.
fn modes(flat: &Path, paths: &[&str]) -> Vec<String> {
    paths
        .iter()
        .map(|p| {
            let m = std::fs::symlink_metadata(flat.join(p)).unwrap_or_else(|_| panic!("{p}"));
            format!("/{p} {:o} {}:{}", m.mode() & 0o7777, m.uid(), m.gid())
        })
        .collect()
}

#[test]
fn copy_keeps_an_existing_destination_as_buildkit_does() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    let ctx = context(
        &k.dir.path().join("dest"),
        &[
            ("Dockerfile", "FROM busybox:kiln\nRUN mkdir -p /tmp /data/sub /data/etc && chmod 1777 /tmp && chmod 755 /data && chmod 700 /data/sub && chown 5:5 /data/sub\nCOPY files/ /tmp/\nCOPY --chown=1000:1000 files/ /data/\nCOPY files /newdir\nCOPY --chown=7:7 files /newchown\nCOPY files/a /tmp/\n"),
            ("files/a", "a"),
            ("files/sub/s", "s"),
            ("files/etc/e", "e"),
        ],
    );
    for (dir, mode) in [("files", 0o700), ("files/sub", 0o750), ("files/etc", 0o711)] {
        std::fs::set_permissions(ctx.join(dir), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    k.log(&["build", "-t", "dest:1", ctx.to_str().unwrap()]);
    let flat = flatten(&k, "dest:1");
    // What BuildKit (Docker 20.10's) gives for the same Dockerfile: the destination the
    // image has keeps its mode and owner; a new one is 755 and owned by --chown; what
    // is copied beneath takes the source's mode and --chown.
    assert_eq!(
        modes(
            &flat,
            &[
                "tmp",
                "tmp/sub",
                "tmp/etc",
                "data",
                "data/sub",
                "data/etc",
                "data/a",
                "newdir",
                "newdir/sub",
                "newchown",
                "newchown/sub"
            ]
        ),
        [
            "/tmp 1777 0:0",
            "/tmp/sub 750 0:0",
            "/tmp/etc 711 0:0",
            "/data 755 0:0",
            "/data/sub 750 1000:1000",
            "/data/etc 711 1000:1000",
            "/data/a 644 1000:1000",
            "/newdir 755 0:0",
            "/newdir/sub 750 0:0",
            "/newchown 755 7:7",
            "/newchown/sub 750 7:7",
        ]
    );
}

#[test]
fn a_run_layer_carries_no_etc_when_the_base_has_etc_without_hosts() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    let ctx = context(
        &k.dir.path().join("etc"),
        &[(
            "Dockerfile",
            "FROM busybox:kiln\nRUN mkdir -p /etc && echo x > /etc/motd\nRUN echo y > /y\n",
        )],
    );
    k.log(&["build", "-t", "etc:1", ctx.to_str().unwrap()]);
    // The last layer is the second RUN's: /y alone, no /etc (nor /proc, /dev, /sys)
    // left by the mounts of the step.
    let store = kiln_image::store::Store::open(k.root()).unwrap();
    let image = store.resolve("etc:1").unwrap();
    let last = image.manifest.layers().last().unwrap();
    let mut names = Vec::new();
    let mut archive = tar::Archive::new(store.open_blob(last.digest()).unwrap());
    for e in archive.entries().unwrap() {
        names.push(e.unwrap().path().unwrap().display().to_string());
    }
    assert_eq!(names, ["y"]);
}

#[test]
fn etc_hosts_and_resolv_conf_are_read_only_in_run_as_buildkit_mounts_them() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    // BuildKit binds both read-only and has no /etc/hostname; a write to them fails, so
    // one step's edit cannot reach the next (they are made once per build).
    let ctx = context(
        &k.dir.path().join("ro-etc"),
        &[(
            "Dockerfile",
            "FROM busybox:kiln\n\
             RUN if echo 10.9.9.9 x >> /etc/hosts; then exit 1; fi; \
                 if echo nameserver 10.9.9.9 >> /etc/resolv.conf; then exit 2; fi; \
                 test ! -e /etc/hostname || exit 3; \
                 test \"$(hostname)\" = buildkitsandbox || exit 4; \
                 grep -q 'db.internal' /etc/hosts || exit 5\n\
             RUN grep -q 10.9.9.9 /etc/hosts /etc/resolv.conf && exit 6; echo fine\n",
        )],
    );
    let out = k.log(&[
        "build",
        "--progress",
        "plain",
        "--add-host",
        "db.internal:10.1.2.3",
        "-t",
        "ro-etc:1",
        ctx.to_str().unwrap(),
    ]);
    assert!(out.contains("fine"), "{out}");
}

#[test]
fn progress_reads_as_docker_build_prints_it() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    let ctx = context(
        &k.dir.path().join("labels"),
        &[(
            "Dockerfile",
            "FROM busybox:kiln AS base\nRUN echo hi\nFROM busybox:kiln\nRUN echo two\nFROM base\nCOPY --from=1 /bin/busybox /bb\n",
        )],
    );
    let out = k
        .cmd(&[
            "build",
            "--progress",
            "plain",
            "-t",
            "labels:1",
            ctx.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stdout, "",
        "progress and results go to standard error, as docker's"
    );
    for want in [
        "[base 1/2] FROM docker.io/library/busybox:kiln",
        "[base 2/2] RUN echo hi",
        "[stage-1 2/2] RUN echo two",
        "[1/2] FROM base",
        "[2/2] COPY --from=1 /bin/busybox /bb",
        "naming to docker.io/library/labels:1 done",
    ] {
        assert!(stderr.contains(want), "{want:?} in {stderr}");
    }
    // -q: the image ID alone, on standard output.
    let out = k
        .cmd(&["build", "-q", ctx.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        stdout.starts_with("sha256:") && stdout.trim().len() == 71 && stdout.lines().count() == 1,
        "{stdout}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn the_flags_ci_scripts_pass_to_docker_build_are_taken() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    let ctx = context(
        &k.dir.path().join("flags"),
        &[("Dockerfile", "FROM busybox:kiln\nRUN cat /etc/hosts\n")],
    );
    let host = kiln_image::store::images::host_platform();
    let metadata = k.dir.path().join("metadata.json");
    let out = k.log(&[
        "build",
        "--progress",
        "plain",
        "--pull=false",
        "--load",
        "--rm",
        "--force-rm",
        "--platform",
        &host,
        "--add-host",
        "db.internal:10.1.2.3",
        "--metadata-file",
        metadata.to_str().unwrap(),
        "--annotation",
        "org.opencontainers.image.source=https://example.org/app",
        "--annotation",
        &format!("manifest[{host}]:com.example.note=a:b=c"),
        "-t",
        "flags:1",
        ctx.to_str().unwrap(),
    ]);
    assert!(out.contains("10.1.2.3\tdb.internal"), "{out}");
    // --ulimit and --shm-size reach RUN.
    let limits = context(
        &k.dir.path().join("limits"),
        &[(
            "Dockerfile",
            "FROM busybox:kiln\nRUN echo nofile=$(ulimit -n) && grep /dev/shm /proc/mounts\n",
        )],
    );
    let out = k.log(&[
        "build",
        "--progress",
        "plain",
        "--ulimit",
        "nofile=512:1024",
        "--shm-size",
        "16MiB",
        limits.to_str().unwrap(),
    ]);
    assert!(out.contains("nofile=512"), "{out}");
    assert!(out.contains("size=16384k"), "{out}");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&metadata).unwrap()).unwrap();
    let inspect: serde_json::Value =
        serde_json::from_str(&k.ok(&["image", "inspect", "flags:1"])).unwrap();
    let id = inspect[0]["Id"].as_str().unwrap_or_default().to_string();
    assert_eq!(meta["containerimage.config.digest"], id.as_str(), "{meta}");
    assert!(meta["containerimage.digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert_eq!(meta["image.name"], "docker.io/library/flags:1");
    // RUN steps for a platform no Linux machine runs are refused before anything runs.
    let out = k.run(&[
        "build",
        "--platform",
        "windows/amd64",
        ctx.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("RUN steps for windows/amd64: kiln runs Linux programs only"),
        "{err}"
    );
    // --annotation lands on the image manifest, as buildx puts it there.
    let store = kiln_image::store::Store::open(k.root()).unwrap();
    let manifest = store.resolve("flags:1").unwrap().manifest;
    let annotations = manifest.annotations().clone().unwrap_or_default();
    assert_eq!(
        annotations
            .get("org.opencontainers.image.source")
            .map(String::as_str),
        Some("https://example.org/app")
    );
    assert_eq!(
        annotations.get("com.example.note").map(String::as_str),
        Some("a:b=c")
    );
    // An index annotation waits for multi-platform builds, and says so.
    let out = k.run(&["build", "--annotation", "index:x=y", ctx.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("no index"), "{err}");
}

#[test]
fn history_shows_what_docker_history_shows() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    let ctx = context(
        &k.dir.path().join("history"),
        &[
            (
                "Dockerfile",
                "FROM busybox:kiln\nENV A=1 \\\n    B=2\nRUN echo one && \\\n    echo two\nCOPY f /f\n",
            ),
            ("f", "f"),
        ],
    );
    k.log(&["build", "-t", "hist:1", ctx.to_str().unwrap()]);
    let history = k.ok(&["history", "--no-trunc", "hist:1"]);
    for want in [
        "COPY f /f # buildkit",
        // The shell's text as the parser joins it, indentation kept, as BuildKit's.
        "RUN /bin/sh -c echo one &&     echo two # buildkit",
        "ENV A=1 B=2",
    ] {
        assert!(history.contains(want), "{want:?} in {history}");
    }
    assert!(!history.contains('\\'), "no continuation left: {history}");
}

#[test]
fn no_cache_filter_runs_the_named_stages_again_and_only_them() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    let ctx = context(
        &k.dir.path().join("filter"),
        &[(
            "Dockerfile",
            "FROM busybox:kiln AS deps\nRUN echo deps > /d\nFROM busybox:kiln AS app\nCOPY --from=deps /d /d\nRUN echo app > /a\n",
        )],
    );
    k.log(&["build", "--progress", "plain", ctx.to_str().unwrap()]);
    let out = k.log(&[
        "build",
        "--progress",
        "plain",
        "--no-cache-filter",
        "app",
        ctx.to_str().unwrap(),
    ]);
    // deps' RUN is the only cached step; app's COPY and RUN ran again.
    assert_eq!(out.matches("CACHED").count(), 1, "{out}");
    assert!(out.contains("[app 3/3] RUN echo app > /a"), "{out}");
}

#[test]
fn build_contexts_stand_in_for_stages_and_images() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    let assets = context(&k.dir.path().join("assets"), &[("x", "one")]);
    let ctx = context(
        &k.dir.path().join("named"),
        &[(
            "Dockerfile",
            "FROM base\nCOPY --from=assets x /x\nCOPY --from=tools /bin/busybox /bb\nRUN --mount=from=assets,target=/m cat /m/x\n",
        )],
    );
    let build = || {
        k.log(&[
            "build",
            "--progress",
            "plain",
            "--build-context",
            &format!("assets={}", assets.display()),
            "--build-context",
            "base=docker-image://busybox:kiln",
            "--build-context",
            "tools=docker-image://busybox:kiln",
            "-t",
            "named:1",
            ctx.to_str().unwrap(),
        ])
    };
    let out = build();
    assert!(
        out.contains("one"),
        "the RUN mount reads the directory: {out}"
    );
    let flat = flatten(&k, "named:1");
    assert_eq!(std::fs::read_to_string(flat.join("x")).unwrap(), "one");
    assert!(flat.join("bb").is_file());
    // A change in the directory context is a change of source, as in the build context.
    std::fs::write(assets.join("x"), "two").unwrap();
    let out = build();
    assert!(out.contains("cache miss: source file changed"), "{out}");
    assert_eq!(
        std::fs::read_to_string(flatten(&k, "named:1").join("x")).unwrap(),
        "two"
    );
    // oci-layout://: an image out of an OCI layout directory (skopeo writes it), by tag
    // and by digest, kept untagged in the store.
    let layout = k.dir.path().join("layout");
    kiln_testkit::run_tool(
        "skopeo",
        &[
            "copy",
            "-q",
            &format!("oci:{}:busybox:kiln", k.root().display()),
            &format!("oci:{}:v1", layout.display()),
        ],
    );
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let from_layout = context(
        &k.dir.path().join("from-layout"),
        &[("Dockerfile", "FROM base\nRUN echo from-layout > /l\n")],
    );
    for base in [
        format!("base=oci-layout://{}:v1", layout.display()),
        format!("base=oci-layout://{}@{digest}", layout.display()),
    ] {
        k.log(&[
            "build",
            "--build-context",
            &base,
            "-t",
            "layout:1",
            from_layout.to_str().unwrap(),
        ]);
        let flat = flatten(&k, "layout:1");
        assert_eq!(
            std::fs::read_to_string(flat.join("l")).unwrap(),
            "from-layout\n"
        );
        assert!(flat.join("bin/busybox").is_file());
    }
    assert!(
        !k.ok(&["images"]).contains("v1"),
        "the layout's tag is not the store's"
    );
    let out = k.run(&[
        "build",
        "--build-context",
        &format!("base=oci-layout://{}:v2", layout.display()),
        from_layout.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("(it has: v1)"), "{err}");
}

/// A digest an earlier kiln remembered with another algorithm (SHA-256, before file
/// digests became BLAKE3) is not taken for this one's: the file is read again, and an
/// unchanged file still hits the cache.
#[test]
fn a_remembered_digest_of_another_algorithm_is_read_again() {
    require_root!();
    let k = Kiln::new();
    let ctx = context(
        &k.dir.path().join("algorithm"),
        &[
            ("Dockerfile", "FROM scratch\nCOPY f.txt /f.txt\n"),
            ("f.txt", "aaaa"),
        ],
    );
    // Past the window in which kiln does not trust a fresh stat.
    std::thread::sleep(std::time::Duration::from_millis(200));
    k.log(&["build", "-t", "f:1", ctx.to_str().unwrap()]);
    let hashes = k.root().join("context-hashes.json");
    let mut remembered: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&hashes).unwrap()).unwrap();
    let file = remembered
        .iter_mut()
        .find(|(stat, _)| stat.contains("f.txt"))
        .unwrap_or_else(|| panic!("f.txt is not remembered: {hashes:?}"));
    assert!(file.1.as_str().unwrap().starts_with("blake3:"), "{file:?}");
    *file.1 = format!("sha256:{}", "0".repeat(64)).into();
    std::fs::write(&hashes, serde_json::to_vec(&remembered).unwrap()).unwrap();
    let out = k.log(&[
        "build",
        "--progress",
        "plain",
        "-t",
        "f:1",
        ctx.to_str().unwrap(),
    ]);
    assert!(out.contains("CACHED"), "{out}");
}

/// `rel` in every layer tree of `kind` (`snapshots` or `outlines`) of the store that has it.
fn trees_holding(k: &Kiln, kind: &str, rel: &str) -> Vec<std::fs::Metadata> {
    std::fs::read_dir(k.root().join(kind))
        .map(|d| d.flatten().collect::<Vec<_>>())
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e.path().join(rel).symlink_metadata().ok())
        .collect()
}

#[test]
fn a_large_copied_file_goes_into_the_layer_alone_until_a_step_runs_on_it() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    // Over the 4 MiB from which COPY reads a file straight into the layer; no zeros, so
    // a placeholder read as data would show.
    let big: Vec<u8> = (0..6u32 << 20).map(|i| (i % 251) as u8 + 1).collect();
    let ctx = context(
        &k.dir.path().join("big"),
        &[
            (
                "Dockerfile",
                "FROM busybox:kiln\nCOPY big /data/big\nCOPY small /data/\nWORKDIR /data/w\n",
            ),
            ("small", "s1"),
        ],
    );
    std::fs::write(ctx.join("big"), &big).unwrap();
    k.log(&["build", "-t", "big:1", ctx.to_str().unwrap()]);
    let trees_with_big = |kind: &str| trees_holding(&k, kind, "data/big");
    assert!(
        trees_with_big("snapshots").is_empty(),
        "the big file was written out as a snapshot"
    );
    let outlines = trees_with_big("outlines");
    assert_eq!(outlines.len(), 1, "one outline holds the big file");
    assert_eq!(outlines[0].len(), big.len() as u64);
    assert_eq!(outlines[0].blocks(), 0, "the placeholder holds no data");
    let flat = flatten(&k, "big:1");
    assert!(std::fs::read(flat.join("data/big")).unwrap() == big);
    assert_eq!(
        std::fs::read_to_string(flat.join("data/small")).unwrap(),
        "s1"
    );
    assert!(flat.join("data/w").is_dir());

    // The COPY after it misses, and reads the outline: nothing is unpacked.
    std::fs::write(ctx.join("small"), "s2").unwrap();
    let out = k.log(&[
        "build",
        "--progress",
        "plain",
        "-t",
        "big:2",
        ctx.to_str().unwrap(),
    ]);
    assert!(
        out.contains("cache miss: source file changed: small"),
        "{out}"
    );
    assert!(trees_with_big("snapshots").is_empty(), "{out}");
    let flat = flatten(&k, "big:2");
    assert!(std::fs::read(flat.join("data/big")).unwrap() == big);

    // A RUN step reads the data: the snapshot is unpacked from the layer.
    let run = context(
        &k.dir.path().join("run-on-big"),
        &[(
            "Dockerfile",
            "FROM big:2\nRUN wc -c < /data/big > /size && tail -c 5 /data/big > /tail\n",
        )],
    );
    k.log(&["build", "-t", "big:3", run.to_str().unwrap()]);
    let flat = flatten(&k, "big:3");
    assert_eq!(
        std::fs::read_to_string(flat.join("size")).unwrap().trim(),
        big.len().to_string()
    );
    assert!(std::fs::read(flat.join("tail")).unwrap() == big[big.len() - 5..]);
    let snapshots = trees_with_big("snapshots");
    assert_eq!(snapshots.len(), 1);
    assert!(snapshots[0].blocks() * 512 >= big.len() as u64);

    // Trimming the cache takes the layer's outline with its snapshot.
    k.ok(&["builder", "prune", "-f", "--keep-storage", "1MB"]);
    assert!(trees_with_big("snapshots").is_empty());
    assert!(trees_with_big("outlines").is_empty());
}

#[test]
fn a_large_file_copied_from_a_stage_goes_into_the_layer_alone() {
    require_root!();
    let k = Kiln::new();
    build_busybox(&k);
    // 6 MiB of a repeating non-zero pattern, made by a RUN step in the first stage.
    let ctx = context(
        &k.dir.path().join("from-stage"),
        &[(
            "Dockerfile",
            "FROM busybox:kiln AS make\n\
             RUN mkdir /out && yes 0123456789abcdef | head -c 6291456 > /out/artifact\n\
             FROM busybox:kiln\n\
             COPY --from=make /out/artifact /data/artifact\n",
        )],
    );
    k.log(&["build", "-t", "artifact:1", ctx.to_str().unwrap()]);
    let trees_with = |kind: &str| trees_holding(&k, kind, "data/artifact");
    assert!(trees_with("snapshots").is_empty());
    let outlines = trees_with("outlines");
    assert_eq!(outlines.len(), 1);
    assert_eq!(outlines[0].blocks(), 0, "the placeholder holds no data");
    let data = std::fs::read(flatten(&k, "artifact:1").join("data/artifact")).unwrap();
    let expected: Vec<u8> = b"0123456789abcdef\n"
        .iter()
        .copied()
        .cycle()
        .take(6 << 20)
        .collect();
    // Read from the stage's view as the layer was written: the view outlived the copy.
    assert!(data == expected, "the layer holds the stage's file");
}

#[test]
fn a_later_source_replaces_an_earlier_large_one_and_modes_apply_to_placeholders() {
    require_root!();
    let k = Kiln::new();
    let big = vec![7u8; 5 << 20];
    let ctx = context(
        &k.dir.path().join("replace"),
        &[
            (
                "Dockerfile",
                "FROM scratch\n\
                 COPY a/f b/f /one/\n\
                 COPY b/f a/f /two/\n\
                 COPY --chmod=600 a/f /three\n",
            ),
            ("a/f", ""),
            ("b/f", "small"),
        ],
    );
    std::fs::write(ctx.join("a/f"), &big).unwrap();
    k.log(&["build", "-t", "replace:1", ctx.to_str().unwrap()]);
    let flat = flatten(&k, "replace:1");
    // The last source named f wins, whether it is the large file or the small one.
    assert_eq!(std::fs::read(flat.join("one/f")).unwrap(), b"small");
    assert!(std::fs::read(flat.join("two/f")).unwrap() == big);
    let three = flat.join("three").metadata().unwrap();
    assert_eq!(three.mode() & 0o7777, 0o600);
    assert!(std::fs::read(flat.join("three")).unwrap() == big);
}
