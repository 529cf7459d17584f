//! `kiln compose config` against a table of Compose files (`testdata/compose/<case>/`:
//! the files, optional `args`, and `expected.yaml`, written by hand from Docker Compose's
//! documented behaviour — merge, interpolation, profiles, extends, include, long
//! syntax), compared as YAML values; and bad files (`testdata/compose/errors/<case>/`)
//! refused with the file, the path in it and what was expected (`expected.err`, a part
//! of the message). And the sample project (`examples/compose`) brought up, used and
//! taken down (root, in the test's own network namespace).

kiln_testkit::private_network!();

use kiln_testkit::require_root;
use std::path::Path;
use std::process::Command;

fn kiln(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .current_dir(dir)
        // The cases' variables come from their .env files alone.
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .args(args)
        .output()
        .expect("run kiln")
}

fn cases(dir: &str) -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut cases: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("compose.yaml").exists())
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no cases in {}", root.display());
    cases
}

#[test]
fn config_prints_what_docker_compose_prints_for_each_case() {
    let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/compose");
    for case in cases("testdata/compose") {
        let extra = std::fs::read_to_string(case.join("args")).unwrap_or_default();
        let mut args: Vec<&str> = vec!["compose"];
        args.extend(extra.split_whitespace());
        args.push("config");
        let out = kiln(&case, &args);
        assert!(
            out.status.success(),
            "{}: {}",
            case.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let got: serde_yaml_ng::Value = serde_yaml_ng::from_slice(&out.stdout).unwrap();
        let expected = std::fs::read_to_string(case.join("expected.yaml"))
            .unwrap()
            .replace("TESTDIR", &testdata.display().to_string());
        let expected: serde_yaml_ng::Value = serde_yaml_ng::from_str(&expected).unwrap();
        assert_eq!(
            got,
            expected,
            "{}: kiln printed\n{}",
            case.display(),
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
fn bad_files_are_refused_naming_the_file_the_path_and_what_was_expected() {
    for case in cases("testdata/compose/errors") {
        let out = kiln(&case, &["compose", "config"]);
        let err = String::from_utf8_lossy(&out.stderr);
        let expected = std::fs::read_to_string(case.join("expected.err")).unwrap();
        assert!(!out.status.success(), "{}: accepted", case.display());
        assert!(
            err.contains(expected.trim()),
            "{}: said {err:?}, not {:?}",
            case.display(),
            expected.trim()
        );
    }
}

/// The Compose Specification's JSON schema, read where Debian's `docker-compose` package
/// (1.29, which `scripts/setup` installs) ships it.
const SCHEMA: &str = "/usr/lib/python3/dist-packages/compose/config/compose_spec.json";

/// What the specification added after that schema was written (2021): the top-level
/// `name` and `include`, `required`/`restart` on a `depends_on` entry, a bind mount's
/// `create_host_path`, a port's `host_ip`. A schema error about anything else is a real
/// disagreement.
const NEWER_THAN_THE_SCHEMA: &[&str] = &[
    "name",
    "include",
    "required",
    "restart",
    "create_host_path",
    "host_ip",
];

/// Fields whose type the specification widened since: a port's `published` is a string
/// (it may be a range), which Docker Compose prints.
const WIDENED_SINCE_THE_SCHEMA: &[&str] = &["published"];

/// Bad files refused by Compose's rules beyond what a schema can say (references between
/// services, interpolation, the port syntax): the schema accepts them.
const BEYOND_THE_SCHEMA: &[&str] = &[
    "bad-port",
    "cycle",
    "required-variable",
    "unknown-dependency",
];

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(SCHEMA).unwrap_or_else(|e| {
        panic!("{SCHEMA}: {e}: scripts/setup installs Debian's docker-compose, which ships it")
    });
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).expect("the schema compiles")
}

fn yaml_to_json(yaml: &[u8]) -> serde_json::Value {
    serde_json::to_value(serde_yaml_ng::from_slice::<serde_yaml_ng::Value>(yaml).unwrap()).unwrap()
}

/// Whether a schema error is only about fields newer than the schema: where the schema
/// offers alternatives (`oneOf`, `anyOf`), one of them fails for no other reason.
fn only_newer_fields(error: &jsonschema::ValidationError) -> bool {
    use jsonschema::error::ValidationErrorKind as Kind;
    match error.kind() {
        Kind::AdditionalProperties { unexpected } => unexpected
            .iter()
            .all(|p| NEWER_THAN_THE_SCHEMA.contains(&p.as_str())),
        Kind::Type { .. } => error
            .instance_path()
            .to_string()
            .rsplit('/')
            .next()
            .is_some_and(|field| WIDENED_SINCE_THE_SCHEMA.contains(&field)),
        Kind::OneOfNotValid { context } | Kind::AnyOf { context } => context
            .iter()
            .any(|branch| branch.iter().all(only_newer_fields)),
        _ => false,
    }
}

/// The schema's complaints, less those about fields newer than it.
fn schema_errors(schema: &jsonschema::Validator, file: &serde_json::Value) -> Vec<String> {
    schema
        .iter_errors(file)
        .filter(|e| !only_newer_fields(e))
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// What kiln prints is a file the specification's schema accepts; what kiln refuses as
/// malformed, the schema refuses too.
#[test]
fn kiln_and_the_compose_schema_agree() {
    let schema = schema();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/compose");
    for case in cases("testdata/compose").into_iter().chain([sample]) {
        let extra = std::fs::read_to_string(case.join("args")).unwrap_or_default();
        let mut args: Vec<&str> = vec!["compose"];
        args.extend(extra.split_whitespace());
        args.push("config");
        let out = kiln(&case, &args);
        assert!(out.status.success(), "{}", case.display());
        let errors = schema_errors(&schema, &yaml_to_json(&out.stdout));
        assert!(
            errors.is_empty(),
            "{}: the schema refuses what kiln printed:\n{}\n{}",
            case.display(),
            errors.join("\n"),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    for case in cases("testdata/compose/errors") {
        let file = yaml_to_json(&std::fs::read(case.join("compose.yaml")).unwrap());
        let name = case.file_name().unwrap().to_str().unwrap();
        let refused = !schema_errors(&schema, &file).is_empty();
        assert_eq!(
            refused,
            !BEYOND_THE_SCHEMA.contains(&name),
            "{name}: the schema {} it",
            if refused { "refuses" } else { "accepts" }
        );
    }
}

#[test]
fn files_are_found_as_docker_compose_finds_them() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("project/deep");
    std::fs::create_dir_all(&sub).unwrap();
    // docker-compose.yml when compose.yaml is absent, found from a directory below.
    std::fs::write(
        dir.path().join("project/docker-compose.yml"),
        "services:\n  a:\n    image: a\n",
    )
    .unwrap();
    let out = kiln(&sub, &["compose", "config", "--services"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a\n");
    // compose.yaml wins over docker-compose.yml; the project is named after the directory.
    std::fs::write(
        dir.path().join("project/compose.yaml"),
        "services:\n  b:\n    image: b\n",
    )
    .unwrap();
    let out = kiln(&sub, &["compose", "config"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("name: project\n") && text.contains("  b:"),
        "{text}"
    );
    // -p and -f.
    let out = kiln(
        dir.path(),
        &[
            "compose",
            "-p",
            "other",
            "-f",
            "project/docker-compose.yml",
            "config",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("name: other\n") && text.contains("  a:"),
        "{text}"
    );
    // Nothing to find.
    let empty = tempfile::tempdir().unwrap();
    let out = kiln(empty.path(), &["compose", "config"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no Compose file found"));
}

#[test]
fn the_sample_project_reads_with_its_env_file_and_anchors() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/compose");
    let out = kiln(&sample, &["compose", "config"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let project: serde_yaml_ng::Value = serde_yaml_ng::from_slice(&out.stdout).unwrap();
    let services = &project["services"];
    // The build-only service is behind a profile.
    assert!(services.get("base").is_none());
    assert_eq!(services["worker"]["environment"]["MODE"], "batch");
    assert_eq!(services["worker"]["deploy"]["replicas"], 3);
    assert_eq!(services["front"]["image"], "kiln-sample/base:1");
    assert_eq!(
        services["front"]["depends_on"]["db"]["condition"],
        "service_healthy"
    );
    assert_eq!(project["volumes"]["data"]["name"], "sample_data");
}

/// The sample project through its life, in the test's network namespace: up, ps, its
/// port, names, secret and volume, scale, a changed service recreated (and a service
/// depending on it with `restart: true` restarted), down -v leaving nothing.
#[test]
fn the_sample_project_comes_up_serves_scales_and_goes_leaving_nothing() {
    require_root!();
    let k = kiln_testkit::Kiln::new();
    let sample = k.dir.path().join("sample");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/compose"),
        &sample,
    );
    std::fs::copy(kiln_testkit::busybox(), sample.join("base/busybox")).unwrap();
    let compose = |args: &[&str]| {
        let mut all = vec!["compose"];
        all.extend_from_slice(args);
        let out = k.cmd(&all).current_dir(&sample).output().unwrap();
        assert!(
            out.status.success(),
            "kiln compose {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // A port in use: refused before anything is made.
    let taken = std::net::TcpListener::bind("0.0.0.0:8080").unwrap();
    let out = k
        .cmd(&["compose", "up", "-d"])
        .current_dir(&sample)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("service front publishes port 8080")
            && err.contains("port is already allocated"),
        "{err}"
    );
    assert_eq!(k.ok(&["ps", "-aq"]), "");
    assert!(!k.ok(&["network", "ls"]).contains("sample_default"));
    assert!(!k.ok(&["volume", "ls"]).contains("sample_data"));
    drop(taken);
    compose(&["up", "-d", "--wait"]);
    let ps = compose(&["ps"]);
    for name in [
        "sample-db-1",
        "sample-front-1",
        "sample-worker-1",
        "sample-worker-2",
        "sample-worker-3",
    ] {
        assert!(ps.contains(name), "{ps}");
    }
    assert!(
        ps.contains("(healthy)") && ps.contains("0.0.0.0:8080->80/tcp"),
        "{ps}"
    );
    // Docker Compose's labels on each container.
    let front: serde_json::Value =
        serde_json::from_str(&k.ok(&["container", "inspect", "sample-front-1"])).unwrap();
    let labels = &front[0]["Config"]["Labels"];
    assert_eq!(labels["com.docker.compose.project"], "sample");
    assert_eq!(labels["com.docker.compose.service"], "front");
    assert_eq!(labels["com.docker.compose.container-number"], "1");
    let mut page = String::new();
    kiln_testkit::wait_for("the published port", || {
        let Ok(mut s) = std::net::TcpStream::connect("127.0.0.1:8080") else {
            return false;
        };
        use std::io::{Read, Write};
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        s.read_to_string(&mut page).unwrap();
        true
    });
    assert!(page.contains("<h1>kiln compose</h1>"), "{page}");
    let inside = k.ok(&[
        "exec",
        "sample-front-1",
        "sh",
        "-c",
        "cat /run/secrets/api_key; nslookup db | tail -2; nslookup worker | grep -c Address",
    ]);
    assert!(inside.starts_with("s3cr3t\n"), "{inside}");
    // Three workers behind one name (and the server's own Address line).
    assert!(inside.trim_end().ends_with('4'), "{inside}");
    // Three workers share the volume: each has written its name there.
    kiln_testkit::wait_for("three writers in the shared volume", || {
        k.ok(&[
            "exec",
            "sample-worker-1",
            "sh",
            "-c",
            "cut -d' ' -f1 /data/log | sort -u | wc -l",
        ])
        .trim()
            == "3"
    });
    // Each line after its container's name, as Docker Compose prints logs.
    let logs = compose(&["logs", "--no-color", "worker"]);
    assert!(
        logs.lines().any(|l| l.starts_with("worker-1 | "))
            && logs.lines().any(|l| l.starts_with("worker-3 | ")),
        "{logs}"
    );
    assert_eq!(compose(&["exec", "-T", "db", "cat", "/ready"]), "ready\n");
    assert_eq!(compose(&["port", "front", "80"]), "0.0.0.0:8080\n");
    let images = compose(&["images"]);
    assert!(
        images.contains("sample-front-1") && images.contains("kiln-sample/base"),
        "{images}"
    );
    assert!(compose(&["top", "front"]).contains("httpd"));
    // A one-off container: the service's image, volume and network, its own command,
    // no published port, gone after --rm.
    let one_off = compose(&[
        "run",
        "--rm",
        "-T",
        "worker",
        "sh",
        "-c",
        "test -s /data/log && nslookup db >/dev/null && echo one-off",
    ]);
    assert_eq!(one_off, "one-off\n");
    assert_eq!(k.ok(&["ps", "-aq"]).lines().count(), 5);
    // Restarting db restarts front, which depends on it with `restart: true`.
    let started = |name: &str| {
        let v: serde_json::Value =
            serde_json::from_str(&k.ok(&["container", "inspect", name])).unwrap();
        v[0]["State"]["StartedAt"].as_str().unwrap().to_string()
    };
    let (front_before, worker_before) = (started("sample-front-1"), started("sample-worker-1"));
    compose(&["restart", "db"]);
    assert_ne!(started("sample-front-1"), front_before);
    assert_eq!(started("sample-worker-1"), worker_before);
    compose(&["stop", "worker"]);
    assert_eq!(compose(&["ps", "-q"]).lines().count(), 2);
    assert!(compose(&["ps", "-a"]).contains("Exited (0)"));
    compose(&["start", "worker"]);
    compose(&["restart", "front"]);
    assert_eq!(compose(&["ps", "-q"]).lines().count(), 5);
    compose(&["up", "-d", "--scale", "worker=5"]);
    assert_eq!(compose(&["ps", "-q"]).lines().count(), 7);
    compose(&["up", "-d", "--scale", "worker=2"]);
    assert_eq!(compose(&["ps", "-q"]).lines().count(), 4);
    // A changed service is made again; the others are left running as they are.
    let db_before = k.ok(&["container", "inspect", "sample-db-1"]);
    let file = sample.join("compose.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("FRONT_PORT:-8080", "FRONT_PORT:-8081")).unwrap();
    compose(&["up", "-d"]);
    assert!(compose(&["ps"]).contains("0.0.0.0:8081->80/tcp"));
    let db_after = k.ok(&["container", "inspect", "sample-db-1"]);
    let id = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap()[0]["Id"].clone();
    assert_eq!(id(&db_before), id(&db_after));
    // A changed db is made again, and front, which depends on it with `restart: true`,
    // restarted after it (the same container); the workers are left alone.
    let (front_before, worker_before) = (
        k.ok(&["container", "inspect", "sample-front-1"]),
        started("sample-worker-1"),
    );
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("retries: 5", "retries: 6")).unwrap();
    compose(&["up", "-d", "--wait"]);
    assert_ne!(
        id(&k.ok(&["container", "inspect", "sample-db-1"])),
        id(&db_after)
    );
    let front_after = k.ok(&["container", "inspect", "sample-front-1"]);
    assert_eq!(id(&front_after), id(&front_before));
    assert_ne!(started("sample-front-1"), {
        let v: serde_json::Value = serde_json::from_str(&front_before).unwrap();
        v[0]["State"]["StartedAt"].as_str().unwrap().to_string()
    });
    assert_eq!(started("sample-worker-1"), worker_before);
    let ids = k.ok(&["ps", "-aq", "--no-trunc"]);
    // db, front and the file's three workers (up without --scale).
    assert_eq!(ids.lines().count(), 5, "{}", k.ok(&["ps", "-a"]));
    compose(&["down", "-v", "--rmi", "all"]);
    assert_eq!(k.ok(&["ps", "-aq"]), "");
    // No mount left under the store (overlay roots, network namespaces), no cgroup.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root = k.root().display().to_string();
    assert!(!mounts.contains(&root), "{mounts}");
    for id in ids.lines() {
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            assert!(!hierarchy.path().join("kiln").join(id).exists(), "{id}");
        }
    }
    assert!(!k.ok(&["images"]).contains("kiln-sample/base"));
    assert!(!k.ok(&["network", "ls"]).contains("sample_default"));
    assert!(!k.ok(&["volume", "ls"]).contains("sample_data"));
    kiln_testkit::wait_for("the veths to go", || {
        !kiln_testkit::run_tool("ip", &["-o", "link"]).contains("veth")
    });
}

/// `kiln compose ARGS` in `dir`, on `k`'s store.
fn compose_in(k: &kiln_testkit::Kiln, dir: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["compose"];
    all.extend_from_slice(args);
    k.cmd(&all).current_dir(dir).output().unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// `up` in the foreground: the services' output prefixed, until Ctrl-C stops them
/// (exit 130), as Docker Compose does.
#[test]
fn up_in_the_foreground_shows_the_output_and_ctrl_c_stops_the_services() {
    require_root!();
    use std::io::BufRead;
    let k = kiln_testkit::Kiln::new();
    kiln_testkit::build_busybox(&k);
    let dir = k.dir.path().join("fg");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  ticker:\n    image: busybox:kiln\n    command: sh -c 'trap \"exit 0\" TERM; while true; do echo tick; sleep 0.2 & wait $$!; done'\n",
    )
    .unwrap();
    // create makes the container and starts nothing.
    let out = compose_in(&k, &dir, &["create"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(k.ok(&["ps", "-a"]).contains("Created"));
    let mut child = k
        .cmd(&["compose", "up"])
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert_eq!(first, "ticker-1 | tick");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let ps = k.ok(&["ps", "-a"]);
    assert!(
        ps.contains("fg-ticker-1") && ps.contains("Exited (0)"),
        "{ps}"
    );
    let out = compose_in(&k, &dir, &["down"]);
    assert!(out.status.success());
    assert_eq!(k.ok(&["ps", "-aq"]), "");
    // --exit-code-from: when one container stops, all stop, with its code as ours.
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  ticker:\n    image: busybox:kiln\n    command: sh -c 'trap \"exit 0\" TERM; while true; do sleep 0.2 & wait $$!; done'\n  job:\n    image: busybox:kiln\n    command: sh -c 'sleep 0.5; exit 3'\n",
    )
    .unwrap();
    let out = compose_in(&k, &dir, &["up", "--exit-code-from", "job"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(k.ok(&["ps", "-q"]), "", "every service stopped");
    let out = compose_in(&k, &dir, &["down"]);
    assert!(out.status.success());
}

/// `convert --to kubernetes` of the sample: every object reads back into its
/// `k8s-openapi` type unchanged, and the whole equals the golden file
/// (`testdata/compose-kubernetes/sample.yaml`, reviewed by hand); what has no
/// Kubernetes counterpart is warned about.
/// A service that cannot start stops `up` there, as Docker Compose stops: exit 1 naming
/// the container and why, what started before it left running, nothing made after it;
/// `down` then removes it all.
#[test]
fn up_stops_at_a_service_that_cannot_start_and_down_removes_what_it_made() {
    require_root!();
    let k = kiln_testkit::Kiln::new();
    kiln_testkit::build_busybox(&k);
    let dir = k.dir.path().join("mid");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        "services:
  a:
    image: busybox:kiln
    command: sleep 100
    init: true
  b:
    image: busybox:kiln
    depends_on: [a]
    command: /no/such/program
  c:
    image: busybox:kiln
    depends_on: [b]
    command: sleep 100
",
    )
    .unwrap();
    let out = compose_in(&k, &dir, &["up", "-d"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("mid-b-1") && err.contains("stat /no/such/program: no such file"),
        "{err}"
    );
    let ps = k.ok(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]);
    let mut ps: Vec<&str> = ps.lines().collect();
    ps.sort();
    assert_eq!(ps, ["mid-a-1 running", "mid-b-1 exited"]);
    let out = compose_in(&k, &dir, &["down"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(k.ok(&["ps", "-aq"]), "");
    assert!(!k.ok(&["network", "ls"]).contains("mid_default"));
    // A secret kiln cannot make a file of yet: refused before anything is made.
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  a:\n    image: busybox:kiln\n    secrets: [token]\nsecrets:\n  token:\n    environment: TOKEN\n",
    )
    .unwrap();
    let out = compose_in(&k, &dir, &["up", "-d"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("service a: secret token: only a `file` secret"),
        "{err}"
    );
    assert_eq!(k.ok(&["ps", "-aq"]), "");
    assert!(!k.ok(&["network", "ls"]).contains("mid_default"));
}

/// A service's `build` goes to kiln's builder with its dockerfile, target, args and
/// secrets; a missing context stops `up` before any build runs or anything is made.
#[test]
fn services_build_with_their_args_target_and_secrets_and_a_missing_context_makes_nothing() {
    require_root!();
    let k = kiln_testkit::Kiln::new();
    kiln_testkit::build_busybox(&k);
    let dir = k.dir.path().join("b");
    std::fs::create_dir_all(dir.join("app")).unwrap();
    std::fs::write(
        dir.join("app/Build.dockerfile"),
        "FROM busybox:kiln AS base\nARG GREETING\nRUN --mount=type=secret,id=tok test \"$(cat /run/secrets/tok)\" = s3cr3t && echo \"$GREETING\" > /built\nFROM base AS unused\nRUN false\n",
    )
    .unwrap();
    std::fs::write(dir.join("token.txt"), "s3cr3t").unwrap();
    let file = "services:
  app:
    image: b-app:1
    build:
      context: ./app
      dockerfile: Build.dockerfile
      target: base
      args:
        GREETING: hello
      secrets:
        - source: token
          target: tok
  broken:
    build: ./nope
secrets:
  token:
    file: ./token.txt
";
    std::fs::write(dir.join("compose.yaml"), file).unwrap();
    let out = compose_in(&k, &dir, &["up", "-d"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("service broken: build context") && err.contains("nope is not a directory"),
        "{err}"
    );
    assert!(!k.ok(&["images"]).contains("b-app"), "no build ran");
    assert_eq!(k.ok(&["ps", "-aq"]), "");
    assert!(!k.ok(&["network", "ls"]).contains("b_default"));
    std::fs::create_dir_all(dir.join("nope")).unwrap();
    std::fs::write(dir.join("nope/Dockerfile"), "FROM busybox:kiln\n").unwrap();
    let out = compose_in(&k, &dir, &["build"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = compose_in(&k, &dir, &["run", "--rm", "-T", "app", "cat", "/built"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The secret is in no layer of the image.
    let rootfs = kiln_testkit::flatten(&k, "b-app:1");
    assert!(!rootfs.join("run/secrets/tok").exists());
    compose_in(&k, &dir, &["down"]);
}

#[test]
fn convert_to_kubernetes_round_trips_through_the_kubernetes_types() {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/compose");
    let store = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .current_dir(&sample)
        .env("KILN_ROOT", store.path())
        .args(["compose", "convert", "--to", "kubernetes"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let warnings = String::from_utf8_lossy(&out.stderr);
    for w in [
        "hostPath",
        "depends_on",
        "not pinned by digest",
        "PersistentVolumeClaim of 1Gi",
    ] {
        assert!(warnings.contains(w), "no warning about {w}: {warnings}");
    }
    let text =
        String::from_utf8_lossy(&out.stdout).replace(&sample.display().to_string(), "SAMPLE");
    let golden = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/compose-kubernetes/sample.yaml"),
    )
    .unwrap();
    assert_eq!(text, golden);
    fn same<T: serde::de::DeserializeOwned + serde::Serialize>(doc: &serde_yaml_ng::Value) {
        let typed: T = serde_yaml_ng::from_value(doc.clone()).unwrap();
        let back: serde_yaml_ng::Value =
            serde_yaml_ng::to_value(serde_json::to_value(&typed).unwrap()).unwrap();
        assert_eq!(&back, doc);
    }
    let mut kinds = Vec::new();
    for doc in text.split("---\n").filter(|d| !d.trim().is_empty()) {
        let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(doc).unwrap();
        let kind = value["kind"].as_str().unwrap().to_string();
        match kind.as_str() {
            "Deployment" => same::<Deployment>(&value),
            "Service" => same::<Service>(&value),
            "PersistentVolumeClaim" => same::<PersistentVolumeClaim>(&value),
            "Secret" => same::<Secret>(&value),
            "ConfigMap" => same::<ConfigMap>(&value),
            other => panic!("unexpected kind {other}"),
        }
        kinds.push(kind);
    }
    assert_eq!(
        kinds,
        [
            "Deployment",
            "Deployment",
            "Service",
            "Deployment",
            "PersistentVolumeClaim",
            "Secret"
        ]
    );
}
