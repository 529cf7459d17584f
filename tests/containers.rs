//! `kiln run` and the container commands, through the binary, on the busybox image kiln
//! builds: docker's exit codes, output, columns and stop semantics. Needs root, as
//! containers do.

kiln_testkit::private_network!();

use std::time::{Duration, Instant};

use kiln_testkit::{build_busybox, root_or_skip, wait_for, Kiln};

/// A store with busybox:kiln, or None when not root (outside CI).
fn busybox_kiln() -> Option<Kiln> {
    if !root_or_skip() {
        return None;
    }
    let k = Kiln::new();
    build_busybox(&k);
    Some(k)
}

/// `kiln container inspect NAME`, parsed.
fn inspect(k: &Kiln, name: &str) -> serde_json::Value {
    serde_json::from_str(&k.ok(&["container", "inspect", name])).unwrap()
}

fn code(k: &Kiln, args: &[&str]) -> (Option<i32>, String, String) {
    let out = k.run(args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn run_passes_output_and_exit_codes_through_as_docker_does() {
    let Some(k) = busybox_kiln() else { return };
    let (rc, out, _) = code(&k, &["run", "--rm", "busybox:kiln", "echo", "hello"]);
    assert_eq!((rc, out.as_str()), (Some(0), "hello\n"));
    let (rc, _, err) = code(
        &k,
        &[
            "run",
            "--rm",
            "busybox:kiln",
            "sh",
            "-c",
            "echo oops >&2; exit 3",
        ],
    );
    assert_eq!((rc, err.as_str()), (Some(3), "oops\n"));
    // Not found: 127; kiln's own failure (no such image, never pulled): 125.
    let (rc, _, err) = code(&k, &["run", "--rm", "busybox:kiln", "no-such-program"]);
    assert_eq!(rc, Some(127), "{err}");
    assert!(err.contains("executable file not found"), "{err}");
    let (rc, _, err) = code(&k, &["run", "--rm", "--pull", "never", "nothere:1", "true"]);
    assert_eq!(rc, Some(125), "{err}");
    // --rm leaves nothing; without it the container stays, exited.
    assert_eq!(k.ok(&["ps", "-aq"]), "");
    let (rc, _, _) = code(&k, &["run", "--name", "kept", "busybox:kiln", "true"]);
    assert_eq!(rc, Some(0));
    let ps = k.ok(&["ps", "-a"]);
    assert!(ps.starts_with("CONTAINER ID   IMAGE"), "{ps}");
    assert!(ps.contains("Exited (0)") && ps.contains("kept"), "{ps}");
    assert_eq!(
        k.ok(&["ps"]).lines().count(),
        1,
        "only the header: none running"
    );
    // The name is taken: refused, and nothing half-made.
    let (rc, _, err) = code(&k, &["run", "--name", "kept", "busybox:kiln", "true"]);
    assert_eq!(rc, Some(125));
    assert!(err.contains("is already in use"), "{err}");
    assert_eq!(k.ok(&["ps", "-aq"]).lines().count(), 1);
    let dirs = std::fs::read_dir(k.root().join("containers"))
        .unwrap()
        .filter(|e| {
            !e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".lock")
        })
        .count();
    assert_eq!(dirs, 1, "no directory left by the refused run");
}

#[test]
fn a_container_has_its_own_names_env_and_dockers_confinement() {
    let Some(k) = busybox_kiln() else { return };
    let out = k.ok(&[
        "run",
        "--rm",
        "-e",
        "GREETING=hi",
        "-w",
        "/tmp/work",
        "-h",
        "box",
        "busybox:kiln",
        "sh",
        "-c",
        "echo $GREETING $HOME $(pwd) $(hostname); grep -E '^(CapEff|Seccomp):' /proc/self/status; tail -1 /etc/hosts",
    ]);
    // On the default bridge its hosts file ends with its address and name, as docker's.
    assert_eq!(
        out,
        "hi /root /tmp/work box\nCapEff:\t00000000a80425fb\nSeccomp:\t2\n172.17.0.2\tbox\n"
    );
    let out = k.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-h",
        "box",
        "busybox:kiln",
        "tail",
        "-1",
        "/etc/hosts",
    ]);
    assert_eq!(out, "127.0.1.1\tbox\n");
    let (rc, _, err) = code(&k, &["run", "--rm", "-u", "nobody", "busybox:kiln", "true"]);
    assert_eq!(rc, Some(125));
    assert!(err.contains("unable to find user nobody"), "{err}");
    let out = k.ok(&["run", "--rm", "-u", "1000:1000", "busybox:kiln", "id"]);
    assert_eq!(out, "uid=1000 gid=1000 groups=1000\n");
}

#[test]
fn detached_containers_log_stop_and_go() {
    let Some(k) = busybox_kiln() else { return };
    let id = k.ok(&[
        "run",
        "-d",
        "--name",
        "ticker",
        "busybox:kiln",
        "sh",
        "-c",
        "trap 'echo bye; exit 0' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done",
    ]);
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64, "{id}");
    assert_eq!(k.ok(&["ps", "-q"]).trim(), &id[..12]);
    wait_for("three ticks", || {
        k.ok(&["logs", "ticker"]).contains("tick 2")
    });
    let tail = k.ok(&["logs", "--tail", "1", "ticker"]);
    assert_eq!(tail.lines().count(), 1, "{tail}");
    assert!(tail.starts_with("tick "), "{tail}");
    // It is running: rm refuses without -f.
    let (rc, _, err) = code(&k, &["rm", "ticker"]);
    assert_eq!(rc, Some(1));
    assert!(err.contains("container is running"), "{err}");
    // SIGTERM reaches its PID 1, which traps it and exits 0.
    assert_eq!(k.ok(&["stop", "ticker"]), "ticker\n");
    let inspect: serde_json::Value = inspect(&k, "ticker");
    assert_eq!(inspect[0]["State"]["Status"], "exited");
    assert_eq!(inspect[0]["State"]["ExitCode"], 0);
    assert_eq!(inspect[0]["Name"], "/ticker");
    assert_eq!(inspect[0]["Id"], id.as_str());
    assert!(k.ok(&["logs", "ticker"]).ends_with("bye\n"));

    // One that ignores SIGTERM (a PID 1 without a handler) is killed after -t.
    k.ok(&[
        "run",
        "-d",
        "--name",
        "deaf",
        "busybox:kiln",
        "sleep",
        "100",
    ]);
    let start = Instant::now();
    k.ok(&["stop", "-t", "1", "deaf"]);
    assert!(start.elapsed() >= Duration::from_secs(1));
    assert_eq!(k.ok(&["wait", "deaf"]), "137\n");
    k.ok(&["rm", "ticker", "deaf"]);
    assert_eq!(k.ok(&["ps", "-aq"]), "");
    assert_eq!(code(&k, &["logs", "deaf"]).0, Some(1), "gone");
}

#[test]
fn a_killed_supervisor_leaves_an_exited_container_that_rm_cleans() {
    let Some(k) = busybox_kiln() else { return };
    k.ok(&[
        "run",
        "-d",
        "--name",
        "orphan",
        "busybox:kiln",
        "sleep",
        "100",
    ]);
    k.kill_supervisor(inspect(&k, "orphan")[0]["Id"].as_str().unwrap());
    wait_for("the exited status", || {
        k.ok(&["ps", "-a"]).contains("Exited (-1)")
    });
    let inspect: serde_json::Value = inspect(&k, "orphan");
    let id = inspect[0]["Id"].as_str().unwrap().to_string();
    k.ok(&["rm", "orphan"]);
    assert_eq!(k.ok(&["ps", "-aq"]), "");
    // The cgroup its supervisor could not remove goes with it.
    wait_for("no cgroup left", || {
        std::fs::read_dir("/sys/fs/cgroup")
            .unwrap()
            .flatten()
            .all(|h| !h.path().join("kiln").join(&id).exists())
    });
}

#[test]
fn volumes_are_filled_from_the_image_outlive_containers_and_binds_reach_the_host() {
    let Some(k) = busybox_kiln() else { return };
    let ctx = kiln_testkit::context(
        &k.dir.path().join("vol"),
        &[(
            "Dockerfile",
            "FROM busybox:kiln\nRUN mkdir -p /data && echo seed > /data/seed && ln -s /etc /escape\nVOLUME /data\n",
        )],
    );
    k.ok(&["build", "-t", "vol:1", ctx.to_str().unwrap()]);
    // A named volume: made on first use, filled from the image, kept after --rm.
    let out = k.ok(&[
        "run",
        "--rm",
        "-v",
        "appdata:/data",
        "vol:1",
        "sh",
        "-c",
        "cat /data/seed; echo more >> /data/seed",
    ]);
    assert_eq!(out, "seed\n");
    let out = k.ok(&[
        "run",
        "--rm",
        "-v",
        "appdata:/data:ro",
        "vol:1",
        "sh",
        "-c",
        "cat /data/seed; touch /data/x 2>/dev/null || echo read-only",
    ]);
    assert_eq!(out, "seed\nmore\nread-only\n");
    assert_eq!(k.ok(&["volume", "ls", "-q"]), "appdata\n");
    // In use by a container (even a stopped one): not removed.
    k.ok(&[
        "run",
        "--name",
        "holder",
        "-v",
        "appdata:/data",
        "vol:1",
        "true",
    ]);
    let out = k.run(&["volume", "rm", "appdata"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use by container holder"));
    k.ok(&["rm", "holder"]);
    k.ok(&["volume", "rm", "appdata"]);
    // The image's VOLUME without -v: an anonymous volume, which rm -v removes.
    k.ok(&["run", "--name", "anon", "vol:1", "true"]);
    assert_eq!(k.ok(&["volume", "ls", "-q"]).trim().len(), 64);
    k.ok(&["rm", "-v", "anon"]);
    assert_eq!(k.ok(&["volume", "ls", "-q"]), "");
    // A volume at a path that is a symlink of the image to /etc is filled from the
    // image's /etc (busybox:kiln has none), never from the host's.
    k.ok(&["run", "--rm", "-v", "escape:/escape", "vol:1", "true"]);
    let data = k.root().join("volumes/escape/_data");
    assert!(!data.join("passwd").exists() && !data.join("hostname").exists());
    // A bind mount reaches the host directory, both ways; a tmpfs is a tmpfs.
    let host = k.dir.path().join("host");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("in"), "from host\n").unwrap();
    let bind = format!("{}:/mnt", host.display());
    let out = k.ok(&[
        "run",
        "--rm",
        "-v",
        &bind,
        "--tmpfs",
        "/scratch",
        "vol:1",
        "sh",
        "-c",
        "cat /mnt/in; echo back > /mnt/out; grep -c ' /scratch tmpfs ' /proc/mounts",
    ]);
    assert_eq!(out, "from host\n1\n");
    assert_eq!(std::fs::read_to_string(host.join("out")).unwrap(), "back\n");
    // Bad specs are refused with what to write, and make nothing.
    let out = k.run(&["run", "--rm", "-v", "data:relative", "vol:1", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("must be an absolute path"));
    assert_eq!(k.ok(&["ps", "-aq"]), "");
}

#[test]
fn exec_runs_in_the_containers_namespaces_and_root_confined_as_it_is() {
    let Some(k) = busybox_kiln() else { return };
    k.ok(&[
        "run",
        "-d",
        "--name",
        "box",
        "busybox:kiln",
        "sh",
        "-c",
        "echo inside > /marker; exec sleep 60",
    ]);
    wait_for("the marker", || {
        k.run(&["exec", "box", "cat", "/marker"]).stdout == b"inside\n"
    });
    // Its PID namespace (PID 1 is the container's), its root, docker's confinement.
    let out = k.ok(&[
        "exec",
        "box",
        "sh",
        "-c",
        "tr '\\0' ' ' < /proc/1/cmdline; echo; grep -E '^(CapEff|Seccomp):' /proc/self/status; test -e /etc/passwd || echo no-host-passwd",
    ]);
    assert_eq!(
        out,
        "sleep 60 \nCapEff:\t00000000a80425fb\nSeccomp:\t2\nno-host-passwd\n"
    );
    let out = k.run(&[
        "exec",
        "-w",
        "/bin",
        "-e",
        "X=1",
        "box",
        "sh",
        "-c",
        "echo $X $(pwd); exit 5",
    ]);
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1 /bin\n");
    assert_eq!(
        k.run(&["exec", "box", "no-such-program"]).status.code(),
        Some(127)
    );
    let mut child = k
        .cmd(&["exec", "-i", "box", "cat"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"through stdin\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "through stdin\n");
    k.ok(&["rm", "-f", "box"]);
    // Not running: refused with what to do.
    k.ok(&["run", "--name", "done", "busybox:kiln", "true"]);
    let out = k.run(&["exec", "done", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not running"));
}

#[test]
fn restart_policies_restart_as_docker_does_and_restore_brings_always_back() {
    let Some(k) = busybox_kiln() else { return };
    // on-failure:3: the first run and three restarts, then it stays exited.
    k.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:3",
        "busybox:kiln",
        "sh",
        "-c",
        "echo run; exit 1",
    ]);
    wait_for("three restarts", || {
        let v: serde_json::Value = inspect(&k, "flaky");
        v[0]["RestartCount"] == 3 && v[0]["State"]["Status"] == "exited"
    });
    assert_eq!(k.ok(&["logs", "flaky"]), "run\nrun\nrun\nrun\n");
    // A clean exit is not a failure.
    k.ok(&[
        "run",
        "-d",
        "--name",
        "fine",
        "--restart",
        "on-failure",
        "busybox:kiln",
        "true",
    ]);
    assert_eq!(k.ok(&["wait", "fine"]), "0\n");
    let v: serde_json::Value = inspect(&k, "fine");
    assert_eq!(v[0]["RestartCount"], 0);
    // --rm and --restart conflict, as in docker.
    let out = k.run(&["run", "--rm", "--restart", "always", "busybox:kiln", "true"]);
    assert_eq!(out.status.code(), Some(125));

    // always: a dead supervisor (a reboot) leaves it exited; restore starts it, once.
    k.ok(&[
        "run",
        "-d",
        "--name",
        "svc",
        "--restart",
        "always",
        "busybox:kiln",
        "sleep",
        "60",
    ]);
    k.ok(&[
        "run",
        "-d",
        "--name",
        "stopped",
        "--restart",
        "unless-stopped",
        "busybox:kiln",
        "sleep",
        "60",
    ]);
    k.ok(&["stop", "-t", "0", "stopped"]);
    let v: serde_json::Value = inspect(&k, "svc");
    k.kill_supervisor(v[0]["Id"].as_str().unwrap());
    wait_for("svc to be exited", || {
        k.ok(&["ps", "-a"]).contains("Exited (-1)")
    });
    assert_eq!(
        k.ok(&["system", "restore"]),
        "svc\n",
        "unless-stopped stays stopped"
    );
    assert_eq!(
        k.ok(&["system", "restore"]),
        "",
        "already running: nothing twice"
    );
    let running = k.ok(&["ps"]);
    assert!(
        running.contains("svc") && !running.contains("stopped"),
        "{running}"
    );
    k.ok(&["rm", "-f", "svc", "stopped", "flaky", "fine"]);

    // create, then start -a: its output and its exit code; start again, detached.
    let id = k.ok(&[
        "create",
        "--name",
        "later",
        "busybox:kiln",
        "sh",
        "-c",
        "echo started; exit 4",
    ]);
    assert_eq!(id.trim().len(), 64);
    assert!(k.ok(&["ps", "-a"]).contains("Created"));
    let out = k.run(&["start", "-a", "later"]);
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "started\n");
    assert_eq!(k.ok(&["start", "later"]), "later\n");
    assert_eq!(k.ok(&["wait", "later"]), "4\n");
    assert_eq!(k.ok(&["logs", "later"]), "started\nstarted\n");
}

#[test]
fn limits_kill_a_memory_hog_and_stop_a_fork_bomb_and_leave_no_cgroup() {
    let Some(k) = busybox_kiln() else { return };
    // Past 32 MiB the kernel's OOM killer ends it: 137, and inspect says why.
    let out = k.run(&[
        "run",
        "--name",
        "hog",
        "-m",
        "32m",
        "busybox:kiln",
        "sh",
        "-c",
        "x=a; while true; do x=\"$x$x\"; done",
    ]);
    assert_eq!(out.status.code(), Some(137));
    let v: serde_json::Value = inspect(&k, "hog");
    assert_eq!(v[0]["State"]["OOMKilled"], true);
    assert_eq!(v[0]["HostConfig"]["Memory"], 32 << 20);
    // A fork bomb meets --pids-limit: forks fail, the shell goes on and says so.
    let out = k.run(&[
        "run",
        "--rm",
        "--pids-limit",
        "20",
        "busybox:kiln",
        "sh",
        "-c",
        "for i in $(seq 1 50); do sleep 5 & done; echo after",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("can't fork"), "{err}");
    // Below docker's minimum: refused, nothing made.
    let out = k.run(&["run", "--rm", "-m", "1m", "busybox:kiln", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("minimum memory limit"));
    // Each container's cgroup goes with it.
    let id = v[0]["Id"].as_str().unwrap().to_string();
    k.ok(&["rm", "hog"]);
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        assert!(
            !hierarchy.path().join("kiln").join(&id).exists(),
            "{} is left",
            hierarchy.path().display()
        );
    }
}

#[test]
fn rename_top_stats_and_prune_as_docker_has_them() {
    let Some(k) = busybox_kiln() else { return };
    k.ok(&[
        "run",
        "-d",
        "--name",
        "first",
        "-m",
        "64m",
        "busybox:kiln",
        "sh",
        "-c",
        "sleep 60 & exec sleep 61",
    ]);
    k.ok(&["rename", "first", "second"]);
    let ps = k.ok(&["ps"]);
    assert!(ps.contains("second") && !ps.contains("first"), "{ps}");
    k.ok(&["run", "--name", "other", "busybox:kiln", "true"]);
    let out = k.run(&["rename", "second", "other"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already in use"));
    wait_for("both sleeps", || {
        let top = k.ok(&["top", "second"]);
        top.contains("sleep 61") && top.contains("sleep 60")
    });
    let top = k.ok(&["top", "second"]);
    assert!(top.starts_with("UID"), "{top}");
    let stats = k.ok(&["stats", "--no-stream", "second"]);
    let row = stats.lines().nth(1).unwrap_or_default().to_string();
    assert!(stats.starts_with("CONTAINER ID"), "{stats}");
    assert!(row.contains("second") && row.contains("/ 64MiB"), "{stats}");
    let pids: u64 = row.split_whitespace().last().unwrap().parse().unwrap();
    assert!(pids >= 2, "{stats}");
    k.ok(&["stop", "-t", "0", "second"]);
    let pruned = k.ok(&["container", "prune", "-f"]);
    assert_eq!(pruned.lines().count(), 3, "{pruned}");
    assert_eq!(k.ok(&["ps", "-aq"]), "");
}

#[test]
fn commit_makes_an_image_of_the_changes_and_export_writes_the_whole_tree() {
    let Some(k) = busybox_kiln() else { return };
    k.ok(&[
        "run",
        "--name",
        "changed",
        "busybox:kiln",
        "sh",
        "-c",
        "echo changed > /new; rm /bin/vi",
    ]);
    let id = k.ok(&[
        "commit",
        "-m",
        "one change",
        "-c",
        "CMD [\"cat\", \"/new\"]",
        "changed",
        "committed:1",
    ]);
    assert!(id.starts_with("sha256:"), "{id}");
    // The new image runs its new CMD on the change, and the removal holds.
    assert_eq!(k.ok(&["run", "--rm", "committed:1"]), "changed\n");
    let out = k.run(&["run", "--rm", "committed:1", "ls", "/bin/vi"]);
    assert_ne!(out.status.code(), Some(0));
    // Its last layer holds the change (and the whiteout), as docker commit's does.
    let store = kiln_image::store::Store::open(k.root()).unwrap();
    let image = store.resolve("committed:1").unwrap();
    let last = image.manifest.layers().last().unwrap();
    let mut names = Vec::new();
    let mut archive = tar::Archive::new(store.open_blob(last.digest()).unwrap());
    for e in archive.entries().unwrap() {
        names.push(e.unwrap().path().unwrap().display().to_string());
    }
    assert!(names.contains(&"new".to_string()), "{names:?}");
    assert!(names.contains(&"bin/.wh.vi".to_string()), "{names:?}");
    let history = k.ok(&["history", "committed:1"]);
    assert!(
        history.lines().nth(1).unwrap().contains("one change"),
        "{history}"
    );
    // diff: docker's list of the same changes.
    assert_eq!(k.ok(&["diff", "changed"]), "C /bin\nD /bin/vi\nA /new\n");
    // export: the merged tree, as one tar.
    let out = k.dir.path().join("changed.tar");
    k.ok(&["export", "-o", out.to_str().unwrap(), "changed"]);
    let mut names = Vec::new();
    let mut archive = tar::Archive::new(std::fs::File::open(&out).unwrap());
    for e in archive.entries().unwrap() {
        names.push(e.unwrap().path().unwrap().display().to_string());
    }
    assert!(names.iter().any(|n| n == "./new") && names.iter().any(|n| n == "./bin/busybox"));
    assert!(
        !names.iter().any(|n| n == "./bin/vi" || n.contains(".wh.")),
        "{names:?}"
    );
    // A running container: frozen while its layer is read (docker's --pause), thawed
    // after; the sandbox's mount points (/proc, /dev, /etc/hosts, ...) are not changes.
    k.ok(&[
        "run",
        "-d",
        "--name",
        "busy",
        "busybox:kiln",
        "sh",
        "-c",
        "echo hot > /hot; exec sleep 60",
    ]);
    wait_for("the file", || {
        k.run(&["exec", "busy", "cat", "/hot"]).status.success()
    });
    k.ok(&["commit", "busy", "hot:1"]);
    let image = store.resolve("hot:1").unwrap();
    let last = image.manifest.layers().last().unwrap();
    let mut archive = tar::Archive::new(store.open_blob(last.digest()).unwrap());
    let names: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert_eq!(names, ["hot"]);
    assert_eq!(k.ok(&["container", "diff", "busy"]), "A /hot\n");
    assert_eq!(k.ok(&["exec", "busy", "echo", "thawed"]), "thawed\n");
    k.ok(&["commit", "--pause=false", "busy", "hot:2"]);
    k.ok(&["rm", "-f", "busy", "changed"]);
}

#[test]
fn security_flags_change_the_confinement_as_dockers_do() {
    let Some(k) = busybox_kiln() else { return };
    let caps = |extra: &[&str]| {
        let mut args = vec!["run", "--rm"];
        args.extend(extra);
        args.extend([
            "busybox:kiln",
            "grep",
            "-E",
            "^(CapEff|Seccomp|NoNewPrivs):",
            "/proc/self/status",
        ]);
        k.ok(&args)
    };
    assert_eq!(
        caps(&["--cap-drop", "ALL", "--cap-add", "NET_ADMIN"]),
        "CapEff:\t0000000000001000\nNoNewPrivs:\t0\nSeccomp:\t2\n"
    );
    assert_eq!(
        caps(&[
            "--cap-drop",
            "NET_RAW",
            "--security-opt",
            "no-new-privileges"
        ]),
        "CapEff:\t00000000a80405fb\nNoNewPrivs:\t1\nSeccomp:\t2\n"
    );
    let privileged = caps(&["--privileged"]);
    assert!(privileged.contains("Seccomp:\t0"), "{privileged}");
    // --read-only: the root only; a tmpfs stays writable.
    let out = k.ok(&[
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "busybox:kiln",
        "sh",
        "-c",
        "touch /x 2>/dev/null || echo ro; touch /tmp/x && echo tmp-rw",
    ]);
    assert_eq!(out, "ro\ntmp-rw\n");
    let out = k.ok(&[
        "run",
        "--rm",
        "--ulimit",
        "nofile=100:200",
        "busybox:kiln",
        "sh",
        "-c",
        "ulimit -n; ulimit -Hn",
    ]);
    assert_eq!(out, "100\n200\n");
    // -i: standard input reaches the container.
    let mut child = k
        .cmd(&["run", "--rm", "-i", "busybox:kiln", "cat"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"in\n").unwrap();
    assert_eq!(child.wait_with_output().unwrap().stdout, b"in\n");
    // --stop-signal: stop sends it first.
    k.ok(&[
        "run",
        "-d",
        "--name",
        "usr1",
        "--stop-signal",
        "USR1",
        "busybox:kiln",
        "sh",
        "-c",
        "trap 'echo got-usr1; exit 0' USR1; while true; do sleep 0.1; done",
    ]);
    wait_for("the trap to be set", || {
        k.ok(&["top", "usr1"]).contains("sleep")
    });
    k.ok(&["stop", "usr1"]);
    assert_eq!(k.ok(&["logs", "usr1"]), "got-usr1\n");
    assert_eq!(k.ok(&["wait", "usr1"]), "0\n");
    // --group-add: supplementary groups by number (or by name from the image).
    let out = k.ok(&[
        "run",
        "--rm",
        "--group-add",
        "50",
        "-u",
        "1000:1000",
        "busybox:kiln",
        "id",
        "-G",
    ]);
    let groups: Vec<&str> = out.split_whitespace().collect();
    assert!(groups.contains(&"50") && groups.contains(&"1000"), "{out}");
    let out = k.run(&[
        "run",
        "--rm",
        "--group-add",
        "staff",
        "busybox:kiln",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(125));
    // --security-opt seccomp=: none at all, or a profile of the user's (Docker's format).
    assert!(caps(&["--security-opt", "seccomp=unconfined"]).contains("Seccomp:\t0"));
    let profile = k.dir.path().join("no-mkdir.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let with_profile = |command: &[&str]| {
        let mut args = vec!["run", "--rm", "--security-opt", &opt, "busybox:kiln"];
        args.extend(command);
        code(&k, &args)
    };
    let (rc, _, err) = with_profile(&["mkdir", "/x"]);
    assert_eq!(rc, Some(1), "{err}");
    assert!(err.contains("Operation not permitted"), "{err}");
    std::fs::write(&profile, "{not json").unwrap();
    let before = k.ok(&["ps", "-aq"]);
    let (rc, _, err) = with_profile(&["true"]);
    assert_eq!(rc, Some(125), "{err}");
    assert!(err.contains("not JSON"), "{err}");
    assert_eq!(k.ok(&["ps", "-aq"]), before, "nothing made");
}

#[test]
fn health_checks_run_in_the_container_and_show_in_ps_and_inspect() {
    let Some(k) = busybox_kiln() else { return };
    let ctx = kiln_testkit::context(
        &k.dir.path().join("hc"),
        &[(
            "Dockerfile",
            "FROM busybox:kiln\nHEALTHCHECK --interval=200ms --retries=2 CMD test -e /ready\n",
        )],
    );
    k.ok(&["build", "-t", "hc:1", ctx.to_str().unwrap()]);
    // The image's HEALTHCHECK: unhealthy after two failures, healthy once the test
    // passes inside the container.
    k.ok(&[
        "run",
        "-d",
        "--name",
        "svc",
        "hc:1",
        "sh",
        "-c",
        "sleep 1.5; touch /ready; exec sleep 60",
    ]);
    wait_for("unhealthy", || k.ok(&["ps"]).contains("(unhealthy)"));
    wait_for("healthy", || k.ok(&["ps"]).contains("(healthy)"));
    let v: serde_json::Value = inspect(&k, "svc");
    let health = &v[0]["State"]["Health"];
    assert_eq!(health["Status"], "healthy");
    assert_eq!(health["FailingStreak"], 0);
    assert_eq!(
        health["Log"].as_array().unwrap().last().unwrap()["ExitCode"],
        0
    );
    // --no-healthcheck: none.
    k.ok(&[
        "run",
        "-d",
        "--name",
        "plain",
        "--no-healthcheck",
        "hc:1",
        "sleep",
        "60",
    ]);
    let v: serde_json::Value = inspect(&k, "plain");
    assert!(v[0]["State"]["Health"].is_null());
    assert!(!k
        .ok(&["ps"])
        .lines()
        .any(|l| l.contains("plain") && l.contains("health")));
    k.ok(&["rm", "-f", "svc", "plain"]);
}

#[test]
fn cp_copies_both_ways_and_never_out_of_the_root() {
    let Some(k) = busybox_kiln() else { return };
    let host = k.dir.path().join("cp");
    std::fs::create_dir_all(host.join("tree/sub")).unwrap();
    std::fs::write(host.join("tree/sub/f"), "from host\n").unwrap();
    std::fs::write(host.join("one"), "one\n").unwrap();
    // Into a stopped container (its own layer), then read back in a run of it.
    k.ok(&[
        "create",
        "--name",
        "box",
        "busybox:kiln",
        "sh",
        "-c",
        "cat /one /tree/sub/f",
    ]);
    k.ok(&["cp", host.join("one").to_str().unwrap(), "box:/one"]);
    k.ok(&["cp", host.join("tree").to_str().unwrap(), "box:/"]);
    // A symlink of the container to the host's /etc: writing through it stays inside.
    k.ok(&[
        "run",
        "--name",
        "linker",
        "busybox:kiln",
        "sh",
        "-c",
        "ln -s /etc /escape",
    ]);
    k.ok(&[
        "cp",
        host.join("one").to_str().unwrap(),
        "linker:/escape/hostname-not",
    ]);
    assert!(
        !std::path::Path::new("/etc/hostname-not").exists(),
        "wrote through to the host"
    );
    // Out of a running container, and a path through its symlink resolves inside it.
    k.ok(&["run", "-d", "--name", "live", "busybox:kiln", "sh", "-c", "echo made > /made; mkdir /etc; echo inside > /etc/passwd; ln -s /etc /escape; exec sleep 60"]);
    wait_for("the file", || {
        k.run(&["exec", "live", "cat", "/made"]).status.success()
    });
    let out_dir = k.dir.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    k.ok(&["cp", "live:/made", out_dir.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(out_dir.join("made")).unwrap(),
        "made\n"
    );
    k.ok(&[
        "cp",
        "live:/escape/passwd",
        out_dir.join("p").to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(out_dir.join("p")).unwrap(),
        "inside\n"
    );
    // A path that climbs out stays in the root: /../../etc/passwd is the container's.
    k.ok(&[
        "cp",
        "live:/../../etc/passwd",
        out_dir.join("q").to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(out_dir.join("q")).unwrap(),
        "inside\n"
    );
    // And into a running one.
    k.ok(&["cp", host.join("one").to_str().unwrap(), "live:/tmp-one"]);
    assert_eq!(k.ok(&["exec", "live", "cat", "/tmp-one"]), "one\n");
    // The stopped container's copies are in its layer.
    let out = k.run(&["start", "-a", "box"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one\nfrom host\n");
    k.ok(&["rm", "-f", "box", "linker", "live"]);
}

#[test]
fn logs_rotate_at_max_size_and_logs_reads_the_rotated_files() {
    let Some(k) = busybox_kiln() else { return };
    k.ok(&[
        "run",
        "--name",
        "chatty",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=3",
        "busybox:kiln",
        "sh",
        "-c",
        "for i in $(seq 1 100); do echo line-$i; done",
    ]);
    let c = inspect(&k, "chatty");
    let log = std::path::PathBuf::from(c[0]["LogPath"].as_str().unwrap());
    let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    assert!(size(&log) <= 1024, "{}", size(&log));
    let first = std::path::PathBuf::from(format!("{}.1", log.display()));
    let second = std::path::PathBuf::from(format!("{}.2", log.display()));
    assert!(first.exists() && second.exists());
    assert!(
        !std::path::Path::new(&format!("{}.3", log.display())).exists(),
        "max-file=3 keeps three"
    );
    // logs reads what is kept, oldest first, in order, to the last line.
    let out = k.ok(&["logs", "chatty"]);
    let numbers: Vec<u32> = out
        .lines()
        .map(|l| l.trim_start_matches("line-").parse().unwrap())
        .collect();
    assert_eq!(*numbers.last().unwrap(), 100);
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{out}");
    assert!(numbers.len() < 100, "older lines were rotated away");
    let out = k.run(&[
        "run",
        "--rm",
        "--log-opt",
        "max-size=lots",
        "busybox:kiln",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(125));
}

#[test]
fn run_it_gives_a_terminal_with_a_prompt_the_callers_size_and_the_exit_code() {
    let Some(k) = busybox_kiln() else { return };
    // Under a pseudo-terminal of script(1), as a user at a terminal runs it.
    let kiln = env!("CARGO_BIN_EXE_kiln");
    let (text, rc) = at_terminal(
        &k,
        &format!("stty rows 40 cols 100; {kiln} run --rm -it busybox:kiln sh"),
        vec![(500, b"echo hi-$((6*7)); stty size; exit 7\r")],
    );
    assert!(text.contains("/ # "), "a prompt: {text}");
    assert!(text.contains("hi-42\n"), "{text}");
    assert!(text.contains("40 100\n"), "the caller's size: {text}");
    assert_eq!(rc, Some(7), "{text}");
    // -t alone: the streams are a terminal.
    assert_eq!(
        k.ok(&[
            "run",
            "--rm",
            "-t",
            "busybox:kiln",
            "sh",
            "-c",
            "test -t 1 && echo tty"
        ]),
        "tty\r\n"
    );
}

/// `script -qec CMD` with `input` written to its terminal, each after its pause: what
/// the terminal showed (without carriage returns) and the exit code.
fn at_terminal(k: &Kiln, cmd: &str, input: Vec<(u64, &'static [u8])>) -> (String, Option<i32>) {
    let mut child = std::process::Command::new("script")
        .args(["-qec", cmd, "/dev/null"])
        .env("KILN_ROOT", k.root())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux)");
    let mut stdin = child.stdin.take().unwrap();
    std::thread::spawn(move || {
        use std::io::Write;
        for (pause, bytes) in input {
            std::thread::sleep(Duration::from_millis(pause));
            let _ = stdin.write_all(bytes);
        }
        std::thread::sleep(Duration::from_secs(3));
    });
    let out = child.wait_with_output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).replace('\r', ""),
        out.status.code(),
    )
}

#[test]
fn run_it_follows_resizes_detaches_with_ctrl_p_ctrl_q_and_attach_comes_back() {
    let Some(k) = busybox_kiln() else { return };
    let kiln = env!("CARGO_BIN_EXE_kiln");
    // The caller's terminal changes size while attached: the container's follows
    // (SIGWINCH); its terminal is its own devpts'.
    let cmd = format!(
        "stty rows 40 cols 100; (sleep 1; stty rows 50 cols 120 </dev/tty) & {kiln} run -it --name dev busybox:kiln sh"
    );
    let (text, rc) = at_terminal(
        &k,
        &cmd,
        vec![
            (2000, b"stty size; echo at-$(tty)\r"),
            // Ctrl-P then Ctrl-Q: detached, the shell left running.
            (700, b"\x10\x11"),
        ],
    );
    assert!(text.contains("50 120\n"), "the new size: {text}");
    assert!(text.contains("at-/dev/pts/0\n"), "{text}");
    assert_eq!(rc, Some(0), "detaching is no failure: {text}");
    assert_eq!(inspect(&k, "dev")[0]["State"]["Status"], "running");
    // Attach again: a Ctrl-P not followed by Ctrl-Q is passed on, and the shell's exit
    // code is ours.
    let (text, rc) = at_terminal(
        &k,
        &format!("{kiln} attach dev"),
        vec![
            (
                700,
                b"stty -icanon -echo; head -c 2 | od -An -tx1; stty sane\r",
            ),
            (300, b"\x10x"),
            (300, b"exit 5\r"),
        ],
    );
    assert!(text.contains("10 78"), "{text}");
    assert_eq!(rc, Some(5), "{text}");
    assert_eq!(inspect(&k, "dev")[0]["State"]["ExitCode"], 5);
    // Not running: nothing to attach to.
    let (rc, _, err) = code(&k, &["attach", "dev"]);
    assert_eq!(rc, Some(1), "{err}");
    assert!(err.contains("start it first"), "{err}");
}

#[test]
fn run_i_passes_standard_input_and_logs_f_follows_the_output() {
    let Some(k) = busybox_kiln() else { return };
    let mut child = k
        .cmd(&[
            "run",
            "--rm",
            "-i",
            "busybox:kiln",
            "sh",
            "-c",
            "read x; echo got-$x; wc -l",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"one\ntwo\nthree\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got-one\n2\n");

    k.ok(&[
        "run", "-d", "--name", "ticker", "busybox:kiln", "sh", "-c",
        "trap 'echo bye; exit 0' TERM; i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.2; done",
    ]);
    let mut follow = k
        .cmd(&["logs", "-f", "ticker"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(follow.stdout.take().unwrap()));
    // Lines come as the container writes them, past what was there at the start.
    for i in 1..=5 {
        assert_eq!(lines.next().unwrap().unwrap(), format!("tick-{i}"));
    }
    k.ok(&["stop", "ticker"]);
    // The container's end ends the follow, its last line included.
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert_eq!(rest.last().map(String::as_str), Some("bye"), "{rest:?}");
    assert!(follow.wait().unwrap().success());
}

#[test]
fn exec_t_gives_a_terminal_and_exec_d_runs_in_the_background() {
    let Some(k) = busybox_kiln() else { return };
    k.ok(&["run", "-d", "--name", "box", "busybox:kiln", "sleep", "60"]);
    assert_eq!(
        k.ok(&["exec", "-t", "box", "sh", "-c", "test -t 0 && echo tty"]),
        "tty\r\n"
    );
    let start = std::time::Instant::now();
    k.ok(&[
        "exec",
        "-d",
        "box",
        "sh",
        "-c",
        "sleep 0.5; echo done > /done",
    ]);
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "returns at once"
    );
    wait_for("the detached command", || {
        k.run(&["exec", "box", "cat", "/done"]).stdout == b"done\n"
    });
    k.ok(&["rm", "-f", "box"]);
}

#[test]
fn init_reaps_orphans_and_passes_signals_on() {
    let Some(k) = busybox_kiln() else { return };
    // PID 1 is kiln's init; the command's exit code is the container's.
    let out = k.run(&["run", "--rm", "--init", "busybox:kiln", "sh", "-c", "cat /proc/1/comm; (sleep 0.1 &); sleep 0.5; grep -l ' Z ' /proc/[0-9]*/stat | wc -l; exit 4"]);
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "kiln-init\n0\n",
        "no zombie left"
    );
    // A command that would ignore SIGTERM as PID 1 gets it from init: stop is quick.
    k.ok(&[
        "run",
        "-d",
        "--name",
        "sleeper",
        "--init",
        "busybox:kiln",
        "sleep",
        "60",
    ]);
    let start = std::time::Instant::now();
    k.ok(&["stop", "sleeper"]);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(k.ok(&["wait", "sleeper"]), "143\n");
    k.ok(&["rm", "sleeper"]);
}

#[test]
fn stats_streams_and_generate_systemd_writes_a_unit_that_runs_the_container() {
    let Some(k) = busybox_kiln() else { return };
    k.ok(&["run", "-d", "--name", "web", "busybox:kiln", "sleep", "60"]);
    // Without --no-stream: a table each second until interrupted.
    let out = std::process::Command::new("timeout")
        .args(["2.5", env!("CARGO_BIN_EXE_kiln"), "stats", "web"])
        .env("KILN_ROOT", k.root())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.matches("CONTAINER ID").count() >= 2, "{text}");
    let unit = k.ok(&["generate", "systemd", "web"]);
    let kiln = env!("CARGO_BIN_EXE_kiln");
    assert!(
        unit.contains(&format!("ExecStart={kiln} start -a web\n")),
        "{unit}"
    );
    assert!(
        unit.contains(&format!("ExecStop={kiln} stop -t 10 web\n")),
        "{unit}"
    );
    assert!(
        unit.contains(&format!("Environment=KILN_ROOT={}\n", k.root().display())),
        "{unit}"
    );
    assert_eq!(
        k.run(&["generate", "systemd", "nothere"]).status.code(),
        Some(1)
    );
    k.ok(&["rm", "-f", "web"]);
}

#[test]
fn ps_filters_and_formats_and_logs_cut_by_time_as_docker_does() {
    let Some(k) = busybox_kiln() else { return };
    k.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-l",
        "tier=web",
        "busybox:kiln",
        "sleep",
        "60",
    ]);
    let out = k.run(&[
        "run",
        "--name",
        "job",
        "busybox:kiln",
        "sh",
        "-c",
        "echo early; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    // A status filter looks at stopped containers without -a; keys are ANDed.
    assert_eq!(
        k.ok(&[
            "ps",
            "--filter",
            "status=exited",
            "--format",
            "{{.Names}}\\t{{.State}}"
        ]),
        "job\texited\n"
    );
    assert_eq!(
        k.ok(&["ps", "-a", "-f", "label=tier", "--format", "{{.Names}}"]),
        "web\n"
    );
    assert_eq!(
        k.ok(&["ps", "-a", "-f", "exited=3", "-f", "name=we", "-q"]),
        ""
    );
    // One key twice: either value.
    let both = k.ok(&[
        "ps",
        "-a",
        "-f",
        "name=web",
        "-f",
        "name=job",
        "--format",
        "{{.Names}}",
    ]);
    assert_eq!(both, "job\nweb\n");
    let json: serde_json::Value =
        serde_json::from_str(k.ok(&["ps", "--format", "json"]).trim()).unwrap();
    assert_eq!(
        (json["Names"].as_str(), json["State"].as_str()),
        (Some("web"), Some("running"))
    );
    assert_eq!(json["Labels"], "tier=web");
    let table = k.ok(&["ps", "-a", "--format", "table {{.Names}}\\t{{.Status}}"]);
    assert!(table.starts_with("NAMES"), "{table}");
    let (rc, _, err) = code(&k, &["ps", "-f", "colour=red"]);
    assert_eq!(rc, Some(1));
    assert!(err.contains("kiln filters on"), "{err}");

    // --since: only what came after.
    std::thread::sleep(Duration::from_millis(1100));
    let mark = humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string();
    assert_eq!(k.run(&["start", "-a", "job"]).status.code(), Some(3));
    assert_eq!(k.ok(&["logs", "job"]), "early\nearly\n");
    assert_eq!(k.ok(&["logs", "--since", &mark, "job"]), "early\n");
    assert_eq!(k.ok(&["logs", "--until", &mark, "job"]), "early\n");
    assert_eq!(k.ok(&["logs", "--since", "1h", "job"]), "early\nearly\n");
}

#[test]
fn generated_names_never_clash() {
    let Some(k) = busybox_kiln() else { return };
    // 40 containers from 256 adjective-surname pairs: some pairs come twice, and get a
    // number, as docker's generator retries with one.
    for _ in 0..40 {
        k.ok(&["create", "busybox:kiln", "true"]);
    }
    let names = k.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    let mut unique: Vec<&str> = names.lines().collect();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 40, "{names}");
}

#[test]
fn pause_freezes_a_container_until_unpause_and_stop_still_stops_it() {
    let Some(k) = busybox_kiln() else { return };
    k.ok(&[
        "run",
        "-d",
        "--name",
        "counter",
        "busybox:kiln",
        "sh",
        "-c",
        "trap 'exit 0' TERM; i=0; while true; do i=$((i+1)); echo $i; sleep 0.05; done",
    ]);
    wait_for("output", || !k.ok(&["logs", "counter"]).is_empty());
    k.ok(&["pause", "counter"]);
    let status = k.ok(&["ps", "--format", "{{.Status}}"]);
    assert!(status.trim_end().ends_with("(Paused)"), "{status}");
    assert_eq!(inspect(&k, "counter")[0]["State"]["Paused"], true);
    assert_eq!(
        k.ok(&["ps", "-f", "status=paused", "-q"]).lines().count(),
        1
    );
    // Frozen: no line comes; exec and a second pause are refused.
    let before = k.ok(&["logs", "counter"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(k.ok(&["logs", "counter"]), before);
    let (rc, _, err) = code(&k, &["exec", "counter", "true"]);
    assert_eq!(rc, Some(125));
    assert!(err.contains("unpause it first"), "{err}");
    assert_ne!(k.run(&["pause", "counter"]).status.code(), Some(0));
    // Thawed: it counts on.
    k.ok(&["unpause", "counter"]);
    wait_for("more lines", || {
        k.ok(&["logs", "counter"]).len() > before.len()
    });
    assert_ne!(k.run(&["unpause", "counter"]).status.code(), Some(0));
    // stop of a paused container thaws it first: its trap runs (exit 0, not 137).
    k.ok(&["pause", "counter"]);
    k.ok(&["stop", "counter"]);
    assert_eq!(inspect(&k, "counter")[0]["State"]["ExitCode"], 0);
    assert_eq!(inspect(&k, "counter")[0]["State"]["Paused"], false);
}

/// The host UID of container `name`'s PID 1 (`/proc/PID/status`).
fn host_uid(k: &Kiln, name: &str) -> u32 {
    let pid = inspect(k, name)[0]["State"]["Pid"].as_u64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

#[test]
fn userns_auto_gives_each_container_a_root_of_host_ids_of_its_own() {
    let Some(k) = busybox_kiln() else { return };
    for name in ["one", "two"] {
        k.ok(&[
            "run",
            "-d",
            "--name",
            name,
            "--userns=auto",
            "busybox:kiln",
            "sleep",
            "60",
        ]);
    }
    // Root inside, an unprivileged range outside, a different one for each container.
    let (one, two) = (host_uid(&k, "one"), host_uid(&k, "two"));
    assert!(one >= 1 << 20 && two >= 1 << 20, "{one} {two}");
    assert!(one.abs_diff(two) >= 65536, "{one} {two}");
    assert_eq!(k.ok(&["exec", "one", "id", "-u"]), "0\n");
    let map = k.ok(&["exec", "one", "cat", "/proc/self/uid_map"]);
    assert_eq!(
        map.split_whitespace().collect::<Vec<_>>(),
        ["0", &one.to_string(), "65536"]
    );
    // The image's files are root's inside (idmapped layers), and what root writes lands
    // in the layer owned by 0 on disk, so a commit is an image like any other.
    assert_eq!(
        k.ok(&[
            "exec",
            "one",
            "sh",
            "-c",
            "touch /mine && stat -c %u:%g /mine /bin/busybox"
        ]),
        "0:0\n0:0\n"
    );
    k.ok(&["commit", "one", "mine:1"]);
    let store = kiln_image::store::Store::open(k.root()).unwrap();
    let image = store.resolve("mine:1").unwrap();
    let last = image.manifest.layers().last().unwrap();
    let mut archive = tar::Archive::new(store.open_blob(last.digest()).unwrap());
    let owners: Vec<(String, u64)> = archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.path().unwrap().display().to_string(),
                e.header().uid().unwrap(),
            )
        })
        .collect();
    assert_eq!(owners, [("mine".to_string(), 0)]);
    // An exec'd process joins the namespace: never the host's root.
    k.ok(&["exec", "-d", "one", "sleep", "30"]);
    wait_for("the exec'd sleep", || {
        k.ok(&["top", "one"]).contains("sleep 30")
    });
    let top = k.ok(&["top", "one"]);
    assert!(
        top.lines()
            .skip(1)
            .all(|l| l.split_whitespace().next() == Some(&one.to_string())),
        "{top}"
    );
    let (rc, _, err) = code(
        &k,
        &["run", "--rm", "--userns=keep-id", "busybox:kiln", "true"],
    );
    assert_eq!(rc, Some(125), "{err}");
    k.ok(&["rm", "-f", "one", "two"]);
}

#[test]
fn add_host_and_dns_flags_write_hosts_and_resolv_conf_as_docker_does() {
    let Some(k) = busybox_kiln() else { return };
    let out = k.ok(&[
        "run",
        "--rm",
        "-h",
        "box",
        "--add-host",
        "db:10.1.2.3",
        "--add-host",
        "v6:[fd00::1]",
        "--dns",
        "192.0.2.53",
        "--dns-search",
        "example.test",
        "--dns-option",
        "ndots:2",
        "busybox:kiln",
        "sh",
        "-c",
        "cat /etc/hosts /etc/resolv.conf",
    ]);
    // The extra hosts after the standard lines, before the container's own name.
    assert!(
        out.contains("ff02::2\tip6-allrouters\n10.1.2.3\tdb\nfd00::1\tv6\n172.17.0.2\tbox\n"),
        "{out}"
    );
    // The host's nameservers, search and options replaced by the flags'.
    let resolv: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.contains("\tbox"))
        .skip(1)
        .collect();
    assert_eq!(
        resolv
            .iter()
            .filter(|l| l.starts_with("nameserver"))
            .collect::<Vec<_>>(),
        [&"nameserver 192.0.2.53"],
        "{out}"
    );
    assert!(resolv.contains(&"search example.test"), "{out}");
    assert!(resolv.contains(&"options ndots:2"), "{out}");
    // inspect says them as docker's HostConfig does; bad values make no container.
    k.ok(&[
        "create",
        "--name",
        "kept",
        "--add-host",
        "db=10.1.2.3",
        "--dns",
        "192.0.2.53",
        "busybox:kiln",
        "true",
    ]);
    let host_config = &inspect(&k, "kept")[0]["HostConfig"];
    assert_eq!(
        host_config["ExtraHosts"],
        serde_json::json!(["db:10.1.2.3"])
    );
    assert_eq!(host_config["Dns"], serde_json::json!(["192.0.2.53"]));
    for bad in [
        ["--add-host", "db"],
        ["--add-host", "db:not-an-ip"],
        ["--dns", "dns.example"],
    ] {
        let (rc, _, err) = code(
            &k,
            &[&["run", "--rm"], &bad[..], &["busybox:kiln", "true"]].concat(),
        );
        assert_eq!(rc, Some(125), "{err}");
    }
    assert_eq!(k.ok(&["ps", "-aq"]).lines().count(), 1);
}
