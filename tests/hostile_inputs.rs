//! Inputs made to exhaust the machine — a Dockerfile whose variables double, a registry
//! that answers with a gigabyte — end in a clear error with bounded memory.

kiln_testkit::private_network!();

use std::io::Read;
use std::process::{Child, Output};
use std::time::{Duration, Instant};

use kiln_testkit::{require_root, Kiln};

/// Waits for `child`, killing it after `limit`: an input that used to run the machine out
/// of memory must not hang the test run.
fn finish_within(mut child: Child, limit: Duration) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().unwrap();
            panic!("still running after {limit:?}: the input was not bounded");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn variables_that_double_at_each_line_fail_on_the_line_that_grows_too_long() {
    let k = Kiln::new();
    let dir = k.dir.path().join("ctx");
    std::fs::create_dir_all(&dir).unwrap();
    let mut text = String::from("FROM scratch\nENV A0=0123456789abcdef\n");
    for i in 1..=40 {
        text.push_str(&format!("ENV A{i}=$A{}$A{}\n", i - 1, i - 1));
    }
    std::fs::write(dir.join("Dockerfile"), &text).unwrap();
    let dockerfile = dir.join("Dockerfile");
    let file = dockerfile.to_str().unwrap();
    // 16 bytes doubled 17 times is 2 MiB: line 2 + 17 is the first past the 1 MiB bound.
    let run = |args: &[&str]| {
        let child = k
            .cmd(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = finish_within(child, Duration::from_secs(60));
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), all)
    };
    // lint reads what it can of expansions and reports findings: it must just finish.
    run(&["lint", file]);
    let mut commands = vec![vec!["parse", "--expand", "-f", file]];
    if kiln_testkit::root_or_skip() {
        commands.push(vec!["build", "--progress", "plain", dir.to_str().unwrap()]);
    }
    for args in commands {
        let (ok, all) = run(&args);
        assert!(!ok, "{args:?}: {all}");
        assert!(
            all.contains("Dockerfile:19:"),
            "{args:?} names the line: {all}"
        );
        assert!(
            all.contains("expands to more than 1048576 bytes"),
            "{args:?}: {all}"
        );
    }
}

/// What a fake registry answers: the status line and headers, and the body.
type Answer = (String, Box<dyn std::io::Read + Send>);

/// A registry that answers every request with `answer(path, port, authorized)`.
/// Serves until the test ends.
fn fake_registry(answer: impl Fn(&str, u16, bool) -> Answer + Send + Sync + 'static) -> u16 {
    use std::io::{BufRead, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let answer = std::sync::Arc::new(answer);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let answer = answer.clone();
            std::thread::spawn(move || {
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                    let mut authorized = false;
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                            break;
                        }
                        authorized |= h.to_ascii_lowercase().starts_with("authorization:");
                    }
                    let (head, mut body) = answer(&path, port, authorized);
                    let mut out = &stream;
                    if out.write_all(head.as_bytes()).is_err()
                        || std::io::copy(&mut body, &mut out).is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// The largest resident set of this test's finished child processes, in KiB.
fn children_max_rss_kib() -> i64 {
    let usage =
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    usage.max_rss()
}

fn empty() -> Box<dyn std::io::Read + Send> {
    Box::new(std::io::empty())
}

#[test]
fn a_gigabyte_manifest_is_refused_at_the_cap_in_bounded_memory() {
    const GIB: u64 = 1 << 30;
    let port = fake_registry(|path, _, _| {
        let mt = "application/vnd.oci.image.manifest.v1+json";
        match path {
            "/v2/" => (
                "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".into(),
                empty(),
            ),
            // Told in advance: refused before a byte is read.
            "/v2/told/manifests/1" => (
                format!("HTTP/1.1 200 OK\r\nContent-Type: {mt}\r\nContent-Length: {GIB}\r\n\r\n"),
                Box::new(std::io::repeat(b' ').take(GIB)),
            ),
            // Not told: streamed until the cap.
            _ => (
                format!("HTTP/1.1 200 OK\r\nContent-Type: {mt}\r\nConnection: close\r\n\r\n"),
                Box::new(std::io::repeat(b' ').take(GIB)),
            ),
        }
    });
    let k = Kiln::new();
    for repo in ["told", "streamed"] {
        let reference = format!("127.0.0.1:{port}/{repo}:1");
        let child = k
            .cmd(&["pull", &reference])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = finish_within(child, Duration::from_secs(120));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert!(err.contains("larger than 4194304 bytes"), "{repo}: {err}");
    }
    // Reading the whole gigabyte took 3 GiB; the cap keeps kiln far below one.
    let rss = children_max_rss_kib();
    assert!(rss < 256 * 1024, "kiln pull grew to {rss} KiB");
}

#[test]
fn a_token_that_never_expires_is_taken_for_a_day() {
    let port = fake_registry(|path, port, authorized| {
        if path.starts_with("/token") {
            let body = r#"{"token":"t","expires_in":18446744073709551615}"#;
            (
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()),
                Box::new(std::io::Cursor::new(body.as_bytes().to_vec())),
            )
        } else if !authorized {
            (
                format!("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"fake\"\r\nContent-Length: 0\r\n\r\n"),
                empty(),
            )
        } else {
            (
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".into(),
                empty(),
            )
        }
    });
    let k = Kiln::new();
    let out = k.run(&["pull", &format!("127.0.0.1:{port}/app:1")]);
    let err = String::from_utf8_lossy(&out.stderr);
    // It used to panic (exit code 101) adding the lifetime to the clock.
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn a_large_context_on_standard_input_is_spooled_not_held_in_memory() {
    require_root!();
    let k = Kiln::new();
    let dir = k.dir.path().join("ctx");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), "FROM scratch\nCOPY small /small\n").unwrap();
    std::fs::write(dir.join("small"), "s").unwrap();
    // 256 MiB the build never copies, in a tar piped to `kiln build -`.
    let big = std::fs::File::create(dir.join("big")).unwrap();
    big.set_len(256 << 20).unwrap();
    let script = format!(
        "tar -C {} -cf - Dockerfile small big | {} build -",
        dir.display(),
        env!("CARGO_BIN_EXE_kiln")
    );
    let child = std::process::Command::new("sh")
        .args(["-c", &script])
        .env("KILN_ROOT", k.root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = finish_within(child, Duration::from_secs(300));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It was read into memory whole: 256 MiB and more.
    let rss = children_max_rss_kib();
    assert!(rss < 64 * 1024, "kiln build - grew to {rss} KiB");
}
