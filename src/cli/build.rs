//! `kiln build [-t NAME]... [-f FILE] [--target STAGE] [--build-arg K[=V]]... [--no-cache]
//! [--label K=V]... [--progress plain] [--iidfile F] [--network default|none|host] CONTEXT`

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context};
use kiln_builder::ast::NetworkMode;
use kiln_builder::build::{BuildOptions, Event, NamedContext};
use kiln_builder::Error;

use super::output::{human_size, parse_size};
use super::progress::Progress;

mod executor;

use executor::{snapshotter, SandboxExecutor};

#[derive(clap::Args)]
pub struct Args {
    /// Name and tag the image (repeatable).
    #[arg(short, long = "tag")]
    tags: Vec<String>,
    /// The Dockerfile (default: CONTEXT/Dockerfile).
    #[arg(short, long = "file")]
    file: Option<PathBuf>,
    #[arg(long)]
    target: Option<String>,
    #[arg(long = "build-arg", value_name = "NAME[=VALUE]")]
    build_args: Vec<String>,
    #[arg(long)]
    no_cache: bool,
    /// Stages whose steps all run, cached or not (repeatable, or comma-separated).
    #[arg(long = "no-cache-filter", value_name = "STAGE", value_delimiter = ',')]
    no_cache_filter: Vec<String>,
    /// Pull every base image again (by default only images the store lacks are pulled);
    /// `--pull=false` is the default, as docker's.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_name = "BOOL")]
    pull: bool,
    /// The platforms to build for (`linux/amd64,linux/arm64`; repeatable): one a
    /// manifest, several an image index. RUN steps for another architecture run through
    /// QEMU (see `kiln builder binfmt`).
    #[arg(
        long = "platform",
        value_name = "OS/ARCH[/VARIANT]",
        value_delimiter = ','
    )]
    platforms: Vec<String>,
    /// A resource limit for RUN steps, as docker's: `nofile=1024:2048` (repeatable).
    #[arg(long = "ulimit", value_name = "NAME=SOFT[:HARD]")]
    ulimits: Vec<String>,
    /// The size of RUN's /dev/shm (`128m`, `1g`; docker's default 64m).
    #[arg(long, value_name = "SIZE")]
    shm_size: Option<String>,
    /// A named context for `FROM NAME`, `COPY --from=NAME`, `RUN --mount=from=NAME`:
    /// `NAME=DIR` or `NAME=docker-image://REF` (repeatable).
    #[arg(long = "build-context", value_name = "NAME=DIR|docker-image://REF")]
    build_contexts: Vec<String>,
    /// Lines for RUN's /etc/hosts: `NAME:IP` (repeatable).
    #[arg(long = "add-host", value_name = "NAME:IP")]
    add_hosts: Vec<String>,
    /// Write the image's digests and names as JSON (BuildKit's keys).
    #[arg(long, value_name = "FILE")]
    metadata_file: Option<PathBuf>,
    /// Accepted for docker's sake: the image is in kiln's store already.
    #[arg(long)]
    load: bool,
    /// Accepted for docker's sake: kiln keeps no intermediate containers.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    rm: Option<bool>,
    /// Accepted for docker's sake: kiln keeps no intermediate containers.
    #[arg(long)]
    force_rm: bool,
    /// Push every -t name after the build (layers compressed with --compression).
    #[arg(long)]
    push: bool,
    /// Take cache hits from a build cache in a registry (repeatable; the first cache
    /// that has a step wins): `type=registry,ref=REGISTRY/REPO:TAG`, or just the REF.
    #[arg(long = "cache-from", value_name = "type=registry,ref=REF")]
    cache_from: Vec<String>,
    /// Push this build's cache to a registry, for --cache-from on another machine:
    /// `type=registry,ref=REF[,mode=min|max][,compression=gzip|zstd][,ignore-error=true]`
    /// (mode=min: the steps of the image built; max: of every stage built).
    #[arg(long = "cache-to", value_name = "type=registry,ref=REF[,mode=max]")]
    cache_to: Option<String>,
    #[arg(long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,
    /// An annotation of the image manifest, as `docker buildx build --annotation` takes
    /// it: `KEY=VALUE` or `manifest:KEY=VALUE` (`manifest[OS/ARCH]:` for this host's
    /// platform). Index annotations wait for multi-platform builds.
    #[arg(long = "annotation", value_name = "[manifest:]KEY=VALUE")]
    annotations: Vec<String>,
    /// auto (tty on a terminal, else plain), tty (live lines with spinners), plain (one
    /// line per step, RUN output, CACHED for hits: for CI logs), all on standard error;
    /// json (one event a line, on standard output); quiet (nothing: see -q).
    #[arg(long, default_value = "auto", value_name = "auto|tty|plain|json|quiet")]
    progress: String,
    /// Print only the image ID, on standard output (docker build -q).
    #[arg(short, long)]
    quiet: bool,
    /// Write the image ID to this file.
    #[arg(long)]
    iidfile: Option<PathBuf>,
    /// Keep `RUN --mount=type=cache` directories here instead of in KILN_ROOT, so a CI
    /// runner can save and restore them between jobs.
    #[arg(long, value_name = "DIR")]
    cache_mount_dir: Option<PathBuf>,
    /// A secret for `RUN --mount=type=secret`: `id=ID,src=FILE` (repeatable).
    #[arg(long = "secret", value_name = "id=ID,src=FILE")]
    secrets: Vec<String>,
    /// Attach a SLSA provenance statement to the image: `mode=min` (or `true`: build
    /// arguments, the Dockerfile's digest, base images, the context's commit) or
    /// `mode=max` (and the Dockerfile's text); `false`, the default, attaches none.
    #[arg(long, value_name = "mode=min|max")]
    provenance: Option<String>,
    /// An ssh agent for `RUN --mount=type=ssh` and ADD of git repositories over ssh:
    /// `default` (SSH_AUTH_SOCK), `ID=SOCKET`, or `ID=KEY[,KEY…]` (repeatable).
    #[arg(long = "ssh", value_name = "default|ID[=SOCKET|KEY[,KEY...]]")]
    ssh: Vec<String>,
    /// Where the result goes besides the store (repeatable): `type=local,dest=DIR` or
    /// `type=tar,dest=FILE|-` (the final stage's files), `type=oci|docker,dest=FILE|-`
    /// (the image: one tar that is both an OCI layout and a docker-archive),
    /// `type=image|registry,name=NAME[,push=true]`; a bare DIR is type=local.
    #[arg(short, long = "output", value_name = "type=TYPE,dest=…")]
    outputs: Vec<String>,
    /// Layer compression for --output.
    #[arg(long, default_value = "gzip")]
    compression: kiln_image::layer::Compression,
    /// Run the build checks (`kiln lint`'s BuildKit rules) and build nothing; exit 1 when
    /// a finding is an error (`# check=error=true`).
    #[arg(long)]
    check: bool,
    /// Entitlements (BuildKit's): `security.insecure` lets `RUN --security=insecure`
    /// run with every capability and no seccomp filter; `network.host` lets
    /// `RUN --network=host` use the host's network.
    #[arg(long = "allow", value_name = "ENTITLEMENT")]
    allow: Vec<String>,
    /// The network for RUN steps: default (a namespace of the build's own, out through
    /// the default bridge's NAT, reaching nothing of the host's), host, or none
    /// (loopback only).
    #[arg(long, default_value = "default")]
    network: String,
    /// The context directory, or `-` for a tar (or a lone Dockerfile) on standard input.
    context: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // `-`: a context tar (plain or compressed) on standard input, unpacked as a layer is
    // (nothing may land outside it); or, when it is not a tar, a Dockerfile alone.
    let stdin_context;
    let mut args = args;
    if args.context == Path::new("-") {
        stdin_context = tempfile::Builder::new()
            .prefix("kiln-context-")
            .tempdir()
            .context("a directory for the context")?;
        // Spooled to a file, not memory: a context can be larger than the machine's RAM.
        let mut spool = tempfile::tempfile().context("a file for the context")?;
        std::io::copy(&mut std::io::stdin().lock(), &mut spool)
            .context("reading the context from standard input")?;
        let rewind = |f: &mut std::fs::File| {
            std::io::Seek::rewind(f).context("reading the context back from its file")
        };
        rewind(&mut spool)?;
        let mut plain =
            kiln_image::layer::Decompressor::new(&mut spool).context("reading the context")?;
        let mut head = vec![0u8; 512];
        let mut n = 0;
        while n < head.len() {
            match std::io::Read::read(&mut plain, &mut head[n..]) {
                Ok(0) | Err(_) => break,
                Ok(k) => n += k,
            }
        }
        drop(plain);
        rewind(&mut spool)?;
        if n == 512 && head[257..262] == *b"ustar" {
            kiln_image::layer::apply(&mut spool, stdin_context.path())
                .context("unpacking the context from standard input")?;
        } else {
            let dockerfile = stdin_context.path().join("Dockerfile");
            let mut out = std::fs::File::create(&dockerfile).context("writing the Dockerfile")?;
            std::io::copy(&mut spool, &mut out).context("writing the Dockerfile")?;
        }
        args.context = stdin_context.path().to_path_buf();
    }
    let dockerfile_path = match &args.file {
        Some(f) if f.is_relative() && !f.exists() => args.context.join(f),
        Some(f) => f.clone(),
        None => args.context.join("Dockerfile"),
    };
    let text = std::fs::read(&dockerfile_path)
        .with_context(|| format!("reading {}", dockerfile_path.display()))?;
    let name = dockerfile_path.display().to_string();
    let dockerfile = match kiln_builder::parse(&name, &String::from_utf8_lossy(&text)) {
        Ok(df) => df,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let ignore = kiln_builder::context::dockerignore_for(&dockerfile_path, &args.context)?;
    // The build checks, as docker build prints them; `--check` stops here.
    let existing = super::lint::existing_store();
    let base_env = |image: &str| super::lint::base_env(existing.as_ref(), image);
    let findings = kiln_builder::lint::build_checks(&dockerfile, &ignore, &base_env);
    for f in &findings {
        eprintln!(
            "{}: {} - {}:{} {}",
            f.severity.name().to_uppercase(),
            f.rule,
            name,
            f.line,
            f.message
        );
    }
    if args.check {
        let errors = findings
            .iter()
            .filter(|f| f.severity == kiln_builder::lint::Severity::Error)
            .count();
        println!(
            "Check complete: {} finding(s), {errors} error(s)",
            findings.len()
        );
        return Ok(if errors > 0 {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        });
    }
    let mut platforms: Vec<kiln_image::Platform> = Vec::new();
    for p in &args.platforms {
        let p = kiln_image::Platform::parse(p).context("--platform")?;
        if !platforms.contains(&p) {
            platforms.push(p);
        }
    }
    if !nix::unistd::geteuid().is_root() {
        bail!("kiln build runs RUN steps in namespaces on overlayfs and needs root for now");
    }
    // Mounts made for the build (stage views) vanish with this process.
    kiln_runtime::isolate_mounts().context("a private mount namespace for the build")?;
    let stop = stop_on_signals()?;
    let store = super::store()?;
    let root = kiln_image::store::Store::default_root();
    let network = match args.network.as_str() {
        "default" => NetworkMode::Default,
        "host" => NetworkMode::Host,
        "none" => NetworkMode::None,
        other => bail!("--network {other}: use default, host or none"),
    };
    // RUN steps off the host's network: a namespace the build's steps share.
    let (resolv_conf, embedded_dns) = super::etc::build_resolv_conf();
    let exec = SandboxExecutor {
        snapshotter: snapshotter(&root)?,
        cancel: stop.cancel.clone(),
        network: super::network::BuildNetwork::new(embedded_dns)?,
    };
    let (allow_insecure, allow_host_network) = allowed(&args.allow)?;
    let mut build_args = BTreeMap::new();
    for spec in &args.build_args {
        match spec.split_once('=') {
            Some((k, v)) => {
                build_args.insert(k.to_string(), v.to_string());
            }
            None => {
                if let Ok(v) = std::env::var(spec) {
                    build_args.insert(spec.clone(), v);
                }
            }
        }
    }
    let labels = args
        .labels
        .iter()
        .map(|l| {
            l.split_once('=')
                .map_or((l.clone(), String::new()), |(k, v)| (k.into(), v.into()))
        })
        .collect();
    let outputs = args
        .outputs
        .iter()
        .map(|o| super::exports::Output::parse(o))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if args.quiet && outputs.iter().any(super::exports::Output::to_stdout) {
        bail!("--output to standard output (-) and -q both write there: drop -q");
    }
    // `type=image|registry` outputs are more tags, and a push.
    for output in &outputs {
        if let super::exports::Output::Image { names, push } = output {
            args.tags.extend(names.iter().cloned());
            args.push |= push;
        }
    }
    let tags = args
        .tags
        .iter()
        .map(|t| kiln_image::Reference::parse(t))
        .collect::<Result<Vec<_>, _>>()?;
    let annotations = args
        .annotations
        .iter()
        .map(|a| annotation(a))
        .collect::<anyhow::Result<_>>()?;
    let ssh_agents = super::ssh::SshAgents::start(&args.ssh)?;
    let provenance = provenance_request(
        args.provenance.as_deref(),
        &args.context,
        dockerfile_path
            .strip_prefix(&args.context)
            .unwrap_or(&dockerfile_path),
        &text,
    )?;
    let opts = BuildOptions {
        dockerfile,
        context: args.context.clone(),
        ignore,
        tags,
        platforms,
        target: args.target.clone(),
        build_args,
        no_cache: args.no_cache,
        no_cache_filter: args.no_cache_filter.clone(),
        labels,
        annotations,
        network,
        secrets: secrets(&args.secrets)?,
        ssh: ssh_agents.sockets(),
        source_date_epoch: super::source_date_epoch()?,
        provenance,
        cache_mount_dir: args.cache_mount_dir.clone(),
        pull: args.pull,
        cache_from: args
            .cache_from
            .iter()
            .map(|c| c.parse())
            .collect::<Result<_, _>>()?,
        cache_to: args.cache_to.as_deref().map(str::parse).transpose()?,
        allow_insecure,
        allow_host_network,
        // The host's own, for a build on the host's network.
        resolv_conf: (network != NetworkMode::Host).then_some(resolv_conf),
        extra_hosts: extra_hosts(&args.add_hosts)?,
        build_contexts: build_contexts(&store, &args.build_contexts)?,
        ulimits: ulimits(&args.ulimits)?,
        shm_size: args.shm_size.as_deref().map(parse_size).transpose()?,
        cancel: Some(stop.cancel.clone()),
    };
    let progress = Progress::new(if args.quiet { "quiet" } else { &args.progress })?;
    let json = progress.is_json();
    let ran = std::sync::atomic::AtomicBool::new(args.no_cache);
    let report = |event: Event| {
        if let Event::Miss { .. } = event {
            ran.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        progress.event(event);
    };
    let result = kiln_builder::build::build(&store, &root, &exec, &opts, &report);
    progress.finish(result.as_ref().err().map(|e| e.to_string()).as_deref());
    // A step killed by the signal fails like any other: say what happened instead.
    let signal = stop.signal.load(Ordering::SeqCst);
    let result = match result {
        Err(_) if signal != 0 => Err(Error::Interrupted),
        r => r,
    };
    match result {
        Ok(built) => {
            if json {
                let tags: Vec<String> = built.tags.iter().map(|t| t.to_string()).collect();
                crate::say!(
                    "{}",
                    serde_json::json!({"type": "image", "id": built.id.to_string(), "manifest": built.manifest.to_string(), "tags": tags})
                );
            } else if progress.is_quiet() {
                crate::say!("{}", built.id);
            } else {
                crate::tell!("writing image {} done", built.id);
                for t in &built.tags {
                    crate::tell!("naming to {t} done");
                }
            }
            for output in &outputs {
                output.write(&store, &built, args.compression, &|line| {
                    if !json {
                        crate::tell!("{line}");
                    }
                })?;
            }
            // New layers may have taken the cache over its limit. Trimming waits for no
            // one: when another build is running, the next build trims instead.
            if ran.load(std::sync::atomic::Ordering::Relaxed) {
                let limit = cache_limit(&root)?;
                let mut freed = 0;
                store.gc_after_if_idle(|| super::trim_cache(&store, &root, limit, &mut freed))?;
                if freed > 0 && !json {
                    crate::tell!(
                        "trimmed the build cache to its limit of {}: {} freed",
                        human_size(limit),
                        human_size(freed)
                    );
                }
            }
            if args.push && stop.signal.load(Ordering::SeqCst) == 0 {
                push_tags(&store, &built, args.compression, json)?;
            }
            if let Some(f) = &args.metadata_file {
                let names: Vec<String> = built.tags.iter().map(|t| t.to_string()).collect();
                let metadata = serde_json::json!({
                    "containerimage.digest": built.manifest.to_string(),
                    "containerimage.config.digest": built.id.to_string(),
                    "image.name": names.join(","),
                });
                std::fs::write(f, serde_json::to_vec_pretty(&metadata)?)
                    .with_context(|| format!("writing {}", f.display()))?;
            }
            if let Some(f) = &args.iidfile {
                std::fs::write(f, built.id.to_string())
                    .with_context(|| format!("writing {}", f.display()))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if json {
                crate::say!(
                    "{}",
                    serde_json::json!({"type": "error", "message": e.to_string()})
                );
            }
            match &e {
                // Expansion errors carry line and column; the file is ours to name.
                Error::Expand { .. } => eprintln!("kiln build: {name}:{e}"),
                _ => eprintln!("kiln build: {e}"),
            }
            Ok(if signal != 0 {
                // As a shell reports a command a signal ended: 128 + the signal.
                ExitCode::from(128 + signal as u8)
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// `--ulimit NAME=SOFT[:HARD]` (docker's names: nofile, nproc, core, ...; `unlimited`
/// or -1 for no limit).
pub(crate) fn ulimits(specs: &[String]) -> anyhow::Result<Vec<(String, u64, u64)>> {
    let value = |spec: &str, v: &str| -> anyhow::Result<u64> {
        match v {
            "unlimited" | "-1" => Ok(u64::MAX),
            n => n
                .parse()
                .map_err(|_| anyhow::anyhow!("--ulimit {spec}: {n} is not a number")),
        }
    };
    specs
        .iter()
        .map(|spec| {
            let (name, limits) = spec
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--ulimit {spec}: write NAME=SOFT[:HARD]"))?;
            let (soft, hard) = limits.split_once(':').unwrap_or((limits, limits));
            Ok((
                format!("RLIMIT_{}", name.to_ascii_uppercase()),
                value(spec, soft)?,
                value(spec, hard)?,
            ))
        })
        .collect()
}

/// `--build-context NAME=DIR|docker-image://REF`.
fn build_contexts(
    store: &kiln_image::store::Store,
    specs: &[String],
) -> anyhow::Result<BTreeMap<String, NamedContext>> {
    let mut out = BTreeMap::new();
    for spec in specs {
        let Some((name, value)) = spec.split_once('=') else {
            bail!("--build-context {spec}: write NAME=DIR, NAME=docker-image://REF or NAME=oci-layout://PATH[:TAG|@DIGEST]");
        };
        let context = match value.split_once("://") {
            Some(("docker-image", image)) => NamedContext::Image(image.to_string()),
            // The image comes into the store untagged; the build names it by digest.
            Some(("oci-layout", layout)) => {
                let (path, pick) = oci_layout_pick(layout)
                    .with_context(|| format!("--build-context {spec}"))?;
                let top = kiln_image::archive::load_from_layout(store, Path::new(path), pick)
                    .with_context(|| format!("--build-context {spec}"))?;
                NamedContext::Image(top.digest().to_string())
            }
            Some((scheme, _)) => bail!(
                "--build-context {spec}: {scheme}:// contexts are not supported: a directory, docker-image://REF or oci-layout://PATH"
            ),
            None => {
                let dir = PathBuf::from(value);
                if !dir.is_dir() {
                    bail!("--build-context {spec}: {value} is not a directory");
                }
                NamedContext::Dir(dir.canonicalize()?)
            }
        };
        out.insert(name.to_string(), context);
    }
    Ok(out)
}

/// `--provenance`: what the statement needs that only the command line knows.
fn provenance_request(
    spec: Option<&str>,
    context: &Path,
    dockerfile: &Path,
    text: &[u8],
) -> anyhow::Result<Option<kiln_builder::build::provenance::Request>> {
    use kiln_builder::build::provenance::{Mode, Request};
    let mode = match spec {
        None | Some("false" | "0") => return Ok(None),
        Some("true" | "1" | "mode=min") => Mode::Min,
        Some("mode=max") => Mode::Max,
        Some(other) => bail!("--provenance {other}: write mode=min, mode=max, true or false"),
    };
    Ok(Some(Request {
        mode,
        dockerfile_path: dockerfile.display().to_string(),
        dockerfile: text.to_vec(),
        git: context_commit(context),
        started: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
    }))
}

/// The context's git remote (`origin`, without credentials; the directory when there is
/// none) and commit, when it is a git checkout.
fn context_commit(context: &Path) -> Option<(String, String)> {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(context)
            .args(args)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "HEAD"])?;
    let remote = git(&["remote", "get-url", "origin"])
        .map(|url| without_credentials(&url))
        .unwrap_or_else(|| format!("file://{}", context.display()));
    Some((remote, commit))
}

/// `https://user:token@host/repo` → `https://host/repo`: a remote's URL as provenance may
/// show it.
fn without_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{host}{path}")
}

/// `PATH`, `PATH:TAG` or `PATH@DIGEST` of an `oci-layout://` context.
fn oci_layout_pick(text: &str) -> anyhow::Result<(&str, kiln_image::archive::Pick)> {
    use kiln_image::archive::Pick;
    if let Some((path, digest)) = text.split_once('@') {
        return Ok((path, Pick::Digest(kiln_image::digest::parse(digest)?)));
    }
    // A tag follows the last `:` after the last `/`.
    let last = text.rfind('/').map_or(0, |i| i + 1);
    Ok(match text[last..].rfind(':') {
        Some(i) => (
            &text[..last + i],
            Pick::Tag(text[last + i + 1..].to_string()),
        ),
        None => (text, Pick::Only),
    })
}

/// `--add-host NAME:IP` (docker's form; `NAME=IP` too).
fn extra_hosts(specs: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    specs
        .iter()
        .map(|spec| {
            let (name, ip) = spec
                .split_once('=')
                .or_else(|| spec.split_once(':'))
                .filter(|(n, ip)| !n.is_empty() && ip.parse::<std::net::IpAddr>().is_ok())
                .ok_or_else(|| anyhow::anyhow!("--add-host {spec}: write NAME:IP"))?;
            Ok((name.to_string(), ip.to_string()))
        })
        .collect()
}

/// `--allow ENTITLEMENT`: whether `security.insecure` and `network.host` are among
/// them.
fn allowed(entitlements: &[String]) -> anyhow::Result<(bool, bool)> {
    let (mut insecure, mut host_network) = (false, false);
    for e in entitlements.iter().flat_map(|e| e.split(',')) {
        match e {
            "security.insecure" => insecure = true,
            "network.host" => host_network = true,
            other => bail!("--allow {other}: kiln knows security.insecure and network.host"),
        }
    }
    Ok((insecure, host_network))
}

/// The build cache's size limit: `KILN_BUILD_CACHE_LIMIT` (e.g. `20GB`), or a tenth of
/// the filesystem that holds the store, as BuildKit's default.
fn cache_limit(root: &Path) -> anyhow::Result<u64> {
    if let Ok(text) = std::env::var("KILN_BUILD_CACHE_LIMIT") {
        return parse_size(&text).context("KILN_BUILD_CACHE_LIMIT");
    }
    let fs = nix::sys::statvfs::statvfs(root)
        .with_context(|| format!("the size of the filesystem of {}", root.display()))?;
    Ok(fs.blocks() as u64 * fs.fragment_size() / 10)
}

/// `--secret id=ID,src=FILE` (also `source=`; `type=file` is the only type).
fn secrets(specs: &[String]) -> anyhow::Result<BTreeMap<String, PathBuf>> {
    let mut out = BTreeMap::new();
    for spec in specs {
        let mut id = None;
        let mut src = None;
        for part in spec.split(',') {
            match part.split_once('=') {
                Some(("id", v)) => id = Some(v.to_string()),
                Some(("src" | "source", v)) => src = Some(PathBuf::from(v)),
                Some(("type", "file")) => {}
                _ => bail!("--secret {spec}: write id=ID,src=FILE"),
            }
        }
        let (Some(id), Some(src)) = (id, src) else {
            bail!("--secret {spec}: write id=ID,src=FILE")
        };
        if !src.is_file() {
            bail!("--secret {spec}: {} is not a file", src.display());
        }
        out.insert(id, src);
    }
    Ok(out)
}

/// What SIGINT or SIGTERM set: the builder's cancel flag, and which signal it was.
struct Stop {
    cancel: Arc<AtomicBool>,
    signal: Arc<AtomicI32>,
}

/// SIGINT and SIGTERM stop the build cleanly: a thread waits for them (blocked in every
/// other thread, which inherit this one's mask), kills the running RUN steps' sandboxes
/// and tells the builder to start nothing more; the build then removes its scratch and
/// names no image (and pushes nothing). A second signal exits at once; the next build
/// removes the scratch left. Called before the build starts a thread.
fn stop_on_signals() -> anyhow::Result<Stop> {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.thread_block().context("blocking SIGINT and SIGTERM")?;
    let stop = Stop {
        cancel: Arc::new(AtomicBool::new(false)),
        signal: Arc::new(AtomicI32::new(0)),
    };
    let (cancel, signal) = (stop.cancel.clone(), stop.signal.clone());
    std::thread::spawn(move || {
        while let Ok(sig) = set.wait() {
            kiln_runtime::stop_all();
            if cancel.swap(true, Ordering::SeqCst) {
                // A second signal: the user does not want to wait for the clean stop.
                eprintln!("kiln build: {sig} again: stopping now");
                std::process::exit(128 + sig as i32);
            }
            signal.store(sig as i32, Ordering::SeqCst);
            eprintln!("kiln build: {sig}: stopping the build (again to stop at once)");
        }
    });
    Ok(stop)
}

/// One `--annotation [TYPE[PLATFORM]:]KEY=VALUE` (buildx's form) for the image manifest.
fn annotation(spec: &str) -> anyhow::Result<(String, String)> {
    let (target, pair) = match spec.split_once(':') {
        // A key may hold a colon itself (`org.example:x=1`): only buildx's types are
        // taken for one.
        Some((t, rest))
            if t.split('[').next().is_some_and(|t| {
                matches!(
                    t,
                    "manifest" | "index" | "manifest-descriptor" | "index-descriptor"
                )
            }) =>
        {
            (t, rest)
        }
        _ => ("manifest", spec),
    };
    let (kind, platform) = match target.split_once('[') {
        Some((kind, p)) => (kind, Some(p.trim_end_matches(']'))),
        None => (target, None),
    };
    if kind != "manifest" {
        bail!("--annotation {spec}: kiln builds one image manifest and no index until multi-platform builds: annotate the manifest (KEY=VALUE or manifest:KEY=VALUE)");
    }
    let host = kiln_image::store::images::host_platform();
    if platform.is_some_and(|p| p != host) {
        bail!("--annotation {spec}: kiln builds for this host's platform ({host}) only");
    }
    match pair.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => bail!("--annotation {spec}: use KEY=VALUE"),
    }
}

/// `--push`: each tag of the built image to its registry.
fn push_tags(
    store: &kiln_image::store::Store,
    built: &kiln_builder::build::Built,
    compression: kiln_image::layer::Compression,
    json: bool,
) -> anyhow::Result<()> {
    if built.tags.is_empty() {
        bail!("--push: name the image with -t REGISTRY/REPOSITORY:TAG");
    }
    let compression = match compression {
        kiln_image::layer::Compression::None => kiln_image::layer::Compression::Gzip,
        c => c,
    };
    let image = store.resolve(built.manifest.as_ref())?;
    for tag in &built.tags {
        let registry = kiln_image::client::Registry::new(&tag.domain)?;
        let pushed =
            kiln_image::client::push(&registry, store, &image, tag, compression, &|line| {
                if !json {
                    crate::tell!("{line}");
                }
            })
            .with_context(|| format!("pushing {tag}"))?;
        if json {
            crate::say!(
                "{}",
                serde_json::json!({"type": "pushed", "name": tag.to_string(), "digest": pushed.digest.to_string(), "size": pushed.size})
            );
        } else {
            crate::tell!(
                "pushing {tag}: digest: {} size: {} done",
                pushed.digest,
                pushed.size
            );
        }
    }
    Ok(())
}
