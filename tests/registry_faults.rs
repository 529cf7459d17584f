//! Faults during uploads: a client that dies mid-chunk, a registry killed mid-upload and
//! started again. Each leaves no partial blob visible and lets the upload go on.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use kiln_testkit::{digest, wait_for, Registry};

fn data(len: usize) -> Vec<u8> {
    let mut state = 0x2545f4914f6cdd1du64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Sends a PATCH that announces `announced` bytes but carries only `sent`, and leaves the
/// connection open (the caller drops it, or kills the server).
fn partial_patch(addr: &str, path: &str, body: &[u8], announced: usize) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "PATCH {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/octet-stream\r\nContent-Length: {announced}\r\n\r\n"
    )
    .unwrap();
    s.write_all(body).unwrap();
    s.flush().unwrap();
    s
}

fn start_upload(reg: &Registry, name: &str) -> String {
    let r = reg
        .http
        .post(reg.url(&format!("/v2/{name}/blobs/uploads/")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    r.headers()["Location"].to_str().unwrap().to_string()
}

/// Bytes the session holds, from its status.
fn received(reg: &Registry, path: &str) -> usize {
    let r = reg.http.get(reg.url(path)).send().unwrap();
    assert_eq!(r.status(), 204, "the session survives");
    let range = r.headers()["Range"].to_str().unwrap().to_string();
    let end: usize = range.trim_start_matches("0-").parse().unwrap();
    if end == 0 {
        0
    } else {
        end + 1
    }
}

/// Sends the rest from where the session stands and closes it; returns the blob's bytes.
fn finish(reg: &Registry, path: &str, all: &[u8], from: usize) -> Vec<u8> {
    let d = digest(all);
    let r = reg
        .http
        .patch(reg.url(path))
        .header("Content-Range", format!("{from}-{}", all.len() - 1))
        .body(all[from..].to_vec())
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    let r = reg
        .http
        .put(reg.url(&format!("{path}?digest={d}")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text());
    let name = path.split("/blobs/").next().unwrap();
    reg.http
        .get(reg.url(&format!("{name}/blobs/{d}")))
        .send()
        .unwrap()
        .bytes()
        .unwrap()
        .to_vec()
}

fn blob_visible(reg: &Registry, bytes: &[u8]) -> bool {
    reg.root
        .join("blobs/sha256")
        .join(&digest(bytes)[7..])
        .exists()
}

#[test]
fn a_client_that_dies_mid_chunk_can_resume_from_what_arrived() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::start(&dir.path().join("store"), &[]);
    let all = data(1_000_000);
    let path = start_upload(&reg, "app");
    drop(partial_patch(&reg.addr, &path, &all[..300_000], all.len()));
    wait_for("what arrived to be stored", || received(&reg, &path) > 0);

    let have = received(&reg, &path);
    assert!(have > 0 && have <= 300_000, "{have}");
    assert!(
        !blob_visible(&reg, &all),
        "nothing is visible before the closing PUT"
    );
    assert_eq!(finish(&reg, &path, &all, have), all);
    // A new upload of the same bytes from scratch works too.
    let again = start_upload(&reg, "other");
    assert_eq!(finish(&reg, &again, &all, 0), all);
}

#[test]
fn a_registry_killed_mid_upload_keeps_the_session_and_no_partial_blob() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let reg = Registry::start(&root, &[]);
    // More than the megabyte the registry gathers before writing, so some of it is on disk.
    let all = data(4_000_000);
    let path = start_upload(&reg, "app");
    let conn = partial_patch(&reg.addr, &path, &all[..2_500_000], all.len());
    wait_for("part of the upload to be stored", || {
        received(&reg, &path) > 0
    });
    reg.kill();
    drop(conn);

    let reg = Registry::start(&root, &[]);
    assert!(!blob_visible(&reg, &all));
    let have = received(&reg, &path);
    assert!(have > 0 && have <= 2_500_000, "{have}");
    // This process never saw the session's bytes: it hashes what storage holds.
    assert_eq!(finish(&reg, &path, &all, have), all);
    for entry in std::fs::read_dir(root.join("blobs/sha256")).unwrap() {
        let entry = entry.unwrap();
        let bytes = std::fs::read(entry.path()).unwrap();
        assert_eq!(
            digest(&bytes)[7..],
            *entry.file_name().to_string_lossy(),
            "every blob matches its name"
        );
    }
    assert_eq!(std::fs::read_dir(root.join("_tmp")).unwrap().count(), 0);
}

#[test]
fn a_body_that_breaks_off_is_blob_upload_invalid_and_keeps_what_arrived() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::start(&dir.path().join("store"), &[]);
    let all = data(100_000);
    let path = start_upload(&reg, "app");
    let mut conn = partial_patch(&reg.addr, &path, &all[..40_000], all.len());
    // Half-close: the server sees the body end early and still answers.
    conn.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut conn, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("BLOB_UPLOAD_INVALID"), "{answer}");
    assert_eq!(received(&reg, &path), 40_000);
    assert_eq!(finish(&reg, &path, &all, 40_000), all);
}

#[test]
fn sigterm_lets_an_upload_in_flight_finish() {
    let dir = tempfile::tempdir().unwrap();
    let mut reg = Registry::start(&dir.path().join("store"), &[]);
    // Over the megabyte the registry gathers before it writes, so what is stored tells
    // that the PATCH is being served.
    let all = data(3_000_000);
    let path = start_upload(&reg, "app");
    let mut conn = partial_patch(&reg.addr, &path, &all[..1_500_000], all.len());
    wait_for("part of the upload to be stored", || {
        received(&reg, &path) > 0
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(reg.pid() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    wait_for("the registry to stop taking connections", || {
        TcpStream::connect(&reg.addr).is_err()
    });
    conn.write_all(&all[1_500_000..]).unwrap();
    let mut answer = vec![0u8; 1024];
    let n = std::io::Read::read(&mut conn, &mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    assert!(
        answer.contains(&format!("range: 0-{}", all.len() - 1)),
        "{answer}"
    );
    drop(conn);
    // Then it stops.
    wait_for("the registry to exit", || reg.exited());
}

#[test]
fn a_close_while_a_chunk_is_still_arriving_is_refused_and_every_blob_matches_its_digest() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::start(&dir.path().join("store"), &[]);
    let all = data(8_000_000);
    let (first, rest) = all.split_at(4_000_000);
    let path = start_upload(&reg, "race/blob");
    // A PATCH that has sent half of what it announced, and goes on later.
    let mut patch = partial_patch(&reg.addr, &path, first, all.len());
    let mut stored = 0;
    wait_for("the first bytes to be stored", || {
        stored = received(&reg, &path);
        stored > 0
    });
    // A close with the digest of what is stored so far, while the PATCH is in flight.
    let so_far = &all[..stored];
    let r = reg
        .http
        .put(reg.url(&format!("{path}?digest={}", digest(so_far))))
        .send()
        .unwrap();
    assert_eq!(r.status(), 416, "one writer at a time: {:?}", r.text());
    let second = reg
        .http
        .patch(reg.url(&path))
        .header(
            "Content-Range",
            format!("{}-{}", first.len(), all.len() - 1),
        )
        .body(rest.to_vec())
        .send();
    // Refused: the 416 comes before the body is all sent, and the server may close the
    // connection while the client still writes it (a broken pipe) — refused either way.
    match second {
        Ok(r) => assert_eq!(r.status(), 416, "a second PATCH is refused too"),
        Err(e) => assert!(
            e.is_request() && kiln_image::client::error_chain(&e).contains("Broken pipe"),
            "a second PATCH is refused, not failed otherwise: {e:?}"
        ),
    }
    patch.write_all(rest).unwrap();
    patch.flush().unwrap();
    let mut answer = [0u8; 12];
    std::io::Read::read_exact(&mut patch, &mut answer).unwrap();
    assert_eq!(&answer, b"HTTP/1.1 202", "the first PATCH completes");
    drop(patch);
    let r = reg
        .http
        .put(reg.url(&format!("{path}?digest={}", digest(&all))))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text());
    assert!(!blob_visible(&reg, so_far));
    assert!(blob_visible(&reg, &all));
    for entry in std::fs::read_dir(reg.root.join("blobs/sha256")).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            digest(&bytes)[7..],
            *path.file_name().unwrap().to_string_lossy(),
            "a blob differs from its digest"
        );
    }
}

#[test]
fn a_client_that_never_finishes_its_headers_is_dropped_after_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("registry.toml");
    std::fs::write(
        &config,
        "[limits]\nheader_timeout_seconds = 1\nidle_timeout_seconds = 2\n",
    )
    .unwrap();
    let reg = Registry::start(
        &dir.path().join("store"),
        &["--config", config.to_str().unwrap()],
    );
    let mut slow = TcpStream::connect(&reg.addr).unwrap();
    write!(slow, "GET /v2/ HTTP/1.1\r\nHost: {}\r\nX-Slow: ", reg.addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let start = std::time::Instant::now();
    let mut buf = [0u8; 512];
    // Closed (EOF, or a reset), not answered and not held.
    let n = std::io::Read::read(&mut slow, &mut buf).unwrap_or(0);
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "the connection was held past the header timeout"
    );
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(n == 0 || answer.starts_with("HTTP/1.1 408"), "{answer}");
    // A body that stops arriving is dropped after the idle timeout.
    let path = start_upload(&reg, "idle/blob");
    let mut stalled = partial_patch(&reg.addr, &path, &data(1000), 2000);
    stalled
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let start = std::time::Instant::now();
    let _ = std::io::Read::read(&mut stalled, &mut buf);
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "a stalled body was held"
    );
    // The server still serves.
    let r = reg.http.get(reg.url("/v2/")).send().unwrap();
    assert_eq!(r.status(), 200);
}
