//! `kiln build`: stages in dependency order, each instruction a step; RUN through the
//! [`Executor`] the caller supplies (the kiln binary plugs in `kiln-runtime`), COPY/ADD
//! from the context or another stage; every step that makes a layer is cached.

mod cache;
mod config;
mod copy;
mod key;
mod plan;
pub mod provenance;
pub mod registry_cache;
mod retention;
mod schedule;
mod snapshots;
mod steps;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kiln_image::digest::Digest;
use kiln_image::store::Store;
use kiln_image::{Platform, Reference};

pub use config::apply_changes;
pub use plan::{Base, Plan};
pub use registry_cache::CacheRef;
pub use retention::{disk_usage, trim, Trimmed};

use crate::ast::{Dockerfile, Instruction, NetworkMode};
use crate::context::Dockerignore;
use crate::Error;

/// What to build.
pub struct BuildOptions {
    /// The parsed Dockerfile.
    pub dockerfile: Dockerfile,
    /// The build context directory.
    pub context: PathBuf,
    /// The context's `.dockerignore`, read.
    pub ignore: Dockerignore,
    /// `-t`: the names the image gets (none: only its ID).
    pub tags: Vec<Reference>,
    /// The platforms to build for, one pass each (this host's when empty): several make
    /// an image index.
    pub platforms: Vec<Platform>,
    /// `--target`: the stage to build (default: the last).
    pub target: Option<String>,
    /// `--build-arg`: values for ARGs.
    pub build_args: BTreeMap<String, String>,
    /// `--no-cache`: run every step, taking nothing from the cache.
    pub no_cache: bool,
    /// `--no-cache-filter`: the stages (by name) whose steps all run.
    pub no_cache_filter: Vec<String>,
    /// `--label`: labels added to the image's config.
    pub labels: BTreeMap<String, String>,
    /// `--annotation`: the image manifest's annotations.
    pub annotations: BTreeMap<String, String>,
    /// `--network`: the network of RUN steps that name none.
    pub network: NetworkMode,
    /// `--secret id=ID,src=FILE`: files RUN steps may mount with `--mount=type=secret`.
    pub secrets: BTreeMap<String, PathBuf>,
    /// `SOURCE_DATE_EPOCH`: every time in the image (history, config, layer mtimes
    /// clamped to it), for reproducible images.
    pub source_date_epoch: Option<i64>,
    /// `--provenance`: a SLSA provenance statement attached to each image made.
    pub provenance: Option<provenance::Request>,
    /// `--ssh ID=SOCKET`: ssh agents' sockets by id (`default` for `--ssh default`), for
    /// `RUN --mount=type=ssh` and ADD of a git repository over ssh.
    pub ssh: BTreeMap<String, PathBuf>,
    /// Where `RUN --mount=type=cache` directories live (default `KILN_ROOT/cachemounts`):
    /// a directory a CI system saves and restores between jobs keeps them warm.
    pub cache_mount_dir: Option<PathBuf>,
    /// `--pull`: fetch every base image again, even when the store has it (otherwise
    /// only images the store lacks are pulled).
    pub pull: bool,
    /// `--cache-from`: build caches in registries to take hits from.
    pub cache_from: Vec<CacheRef>,
    /// `--cache-to`: where to push this build's cache.
    pub cache_to: Option<CacheRef>,
    /// `--allow security.insecure`: BuildKit's entitlement for `RUN --security=insecure`.
    pub allow_insecure: bool,
    /// `--allow network.host`: BuildKit's entitlement for `RUN --network=host`.
    pub allow_host_network: bool,
    /// What RUN's `/etc/resolv.conf` says (None: the host's).
    pub resolv_conf: Option<String>,
    /// `--build-context NAME=…`: what `FROM NAME`, `COPY --from=NAME` and
    /// `RUN --mount=from=NAME` take instead of a stage or image of that name.
    pub build_contexts: BTreeMap<String, NamedContext>,
    /// `--add-host NAME:IP`: lines for RUN's `/etc/hosts`.
    pub extra_hosts: Vec<(String, String)>,
    /// `--ulimit`: (`RLIMIT_…` name, soft, hard) for RUN steps.
    pub ulimits: Vec<(String, u64, u64)>,
    /// `--shm-size`: the size of RUN's `/dev/shm`, in bytes.
    pub shm_size: Option<u64>,
    /// Set (by a SIGINT/SIGTERM handler) to stop the build before its next step and
    /// before it names an image; the step running is the caller's to stop.
    pub cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// A named build context (`--build-context NAME=VALUE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContext {
    /// A local directory, read as the build context is (without `.dockerignore`).
    Dir(PathBuf),
    /// An image, in place of the stage or image the name would mean
    /// (`docker-image://REF`).
    Image(String),
}

/// One RUN step, ready for an executor: what to run, as whom, on which layers.
#[derive(Debug, Clone)]
pub struct RunStep {
    /// The command and its arguments (a shell form already wrapped in the stage's SHELL).
    pub argv: Vec<String>,
    /// `KEY=value`: the stage's ENV, the ARGs in scope, and PATH and HOME when unset.
    pub env: Vec<String>,
    /// USER's user id, resolved in the stage's `/etc/passwd`.
    pub uid: u32,
    /// USER's group id.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// WORKDIR.
    pub cwd: String,
    /// Snapshot directories, topmost first.
    pub lowers: Vec<PathBuf>,
    /// Empty directories for overlayfs on one filesystem: `upper` collects the changes.
    pub upper: PathBuf,
    /// overlayfs' work directory, beside `upper`.
    pub work: PathBuf,
    /// The directory the root is mounted on in the step's own mount namespace, shared by
    /// every step of the build (an executor that copies the layers instead copies them
    /// beside `work`).
    pub merged: PathBuf,
    /// The step's network.
    pub network: NetworkMode,
    /// The host name the step sees.
    pub hostname: String,
    /// Its `--mount`s, the secrets and the network files (`/etc/hosts`,
    /// `/etc/resolv.conf`), resolved to host paths.
    pub mounts: Vec<RunMount>,
    /// `RUN --security=insecure` (allowed with `--allow security.insecure`): every
    /// capability, no seccomp filter, nothing masked.
    pub insecure: bool,
    /// `--ulimit`: (`RLIMIT_…` name, soft, hard).
    pub ulimits: Vec<(String, u64, u64)>,
    /// `--shm-size`, in bytes.
    pub shm_size: Option<u64>,
}

/// A mount for a RUN step.
#[derive(Debug, Clone)]
pub struct RunMount {
    /// Where it appears in the step's root.
    pub destination: PathBuf,
    /// What is mounted.
    pub kind: RunMountKind,
}

/// What a [`RunMount`] mounts.
#[derive(Debug, Clone)]
pub enum RunMountKind {
    /// A host file or directory.
    Bind {
        /// The file or directory on the host.
        source: PathBuf,
        /// Mounted read-only.
        readonly: bool,
    },
    /// A writable view of the directory `lower` whose changes go to `upper` (with
    /// overlayfs' `work` beside it) and are thrown away after the step.
    Overlay {
        /// The directory seen.
        lower: PathBuf,
        /// Where writes go.
        upper: PathBuf,
        /// overlayfs' work directory.
        work: PathBuf,
    },
    /// A fresh tmpfs, optionally limited in bytes.
    Tmpfs {
        /// The limit in bytes; None for the kernel's default (half the memory).
        size: Option<u64>,
    },
}

/// Runs RUN steps and shows stages' file systems; the builder owns this seam so it never
/// depends on the runtime.
pub trait Executor: Sync {
    /// Runs the step; `output` receives each line it prints (stdout and stderr).
    /// Returns the exit code.
    fn run(&self, step: &RunStep, output: &mut dyn FnMut(&str)) -> Result<i32, Error>;
    /// Mounts a read-only union of `lowers` (topmost first) on the empty directory `at`.
    fn view(&self, lowers: &[PathBuf], at: &Path) -> Result<(), Error>;
    /// Undoes [`Executor::view`].
    fn unview(&self, at: &Path);
    /// Whether RUN steps for `platform` (not this host's) can run here; if not, why and
    /// what to do.
    fn can_run(&self, platform: &Platform) -> Result<(), String>;
}

/// What the build reports as it goes.
#[derive(Debug)]
pub enum Event<'a> {
    /// A step starts.
    Step {
        /// Its number, unique in the build (`#4`); the events that follow name it.
        id: usize,
        /// The stage's name (or `pull`, `cache` for the work before the stages).
        stage: &'a str,
        /// The step's place in its stage, from 1.
        index: usize,
        /// The stage's step count.
        total: usize,
        /// The instruction, or what is being done.
        text: &'a str,
    },
    /// The step's result came from the cache.
    Cached {
        /// The step's number.
        id: usize,
    },
    /// Why a step could not come from the cache.
    Miss {
        /// The step's number.
        id: usize,
        /// Why (`not built before`, `an earlier step changed`, …).
        reason: &'a str,
    },
    /// A line the step printed.
    Output {
        /// The step's number.
        id: usize,
        /// The line, without its line break.
        line: &'a str,
    },
    /// The step finished.
    Done {
        /// The step's number.
        id: usize,
        /// How long it took.
        seconds: f64,
    },
}

/// The image a build made.
#[derive(Debug)]
pub struct Built {
    /// The manifest's digest; the index's for several platforms.
    pub manifest: Digest,
    /// The image ID: the config's digest; the index's for several platforms.
    pub id: Digest,
    /// The names it was given.
    pub tags: Vec<Reference>,
    /// Each platform built and its manifest.
    pub platforms: Vec<(Platform, Digest)>,
}

/// `RUN --security=insecure` needs the `security.insecure` entitlement and
/// `RUN --network=host` `network.host`, as in BuildKit: refused before anything runs,
/// cached or not.
fn refuse_unentitled_steps(opts: &BuildOptions) -> Result<(), Error> {
    for instr in &opts.dockerfile.instructions {
        if let crate::ast::Command::Run(run) = &instr.command {
            let needs =
                if run.security == Some(crate::ast::Security::Insecure) && !opts.allow_insecure {
                    Some((
                        "RUN --security=insecure",
                        "security.insecure",
                        "run with every capability and no seccomp filter",
                    ))
                } else if run.network == Some(NetworkMode::Host) && !opts.allow_host_network {
                    Some((
                        "RUN --network=host",
                        "network.host",
                        "use the build machine's network (its 127.0.0.1 and its services)",
                    ))
                } else {
                    None
                };
            if let Some((step, entitlement, grants)) = needs {
                return Err(Error::NotAllowed {
                    line: instr.span.start.line,
                    step,
                    entitlement,
                    grants,
                });
            }
        }
    }
    Ok(())
}

/// Builds `opts` into `store`: pulls missing base images, plans the stages, runs them
/// (independent stages at once), caches every step that makes a layer under `root`
/// (`KILN_ROOT`), names the image and, when asked, exports its cache. `progress` hears
/// every step.
pub fn build(
    store: &Store,
    root: &Path,
    exec: &dyn Executor,
    opts: &BuildOptions,
    progress: &(dyn Fn(Event) + Sync),
) -> Result<Built, Error> {
    refuse_unentitled_steps(opts)?;
    let platforms = match opts.platforms.as_slice() {
        [] => vec![Platform::host()],
        some => some.to_vec(),
    };
    let _guard = store.write_guard()?;
    let step_id = std::sync::atomic::AtomicUsize::new(0);
    let mut made = Vec::new();
    // Every platform's steps go into one cache export.
    let mut cached: Vec<registry_cache::Step> = Vec::new();
    for platform in &platforms {
        let pass = steps::Builder::new(store, root, exec, opts, platform.clone(), &step_id)?
            .run(progress)?;
        for step in &pass.steps {
            if !cached.iter().any(|s| s.key == step.key) {
                cached.push(step.clone());
            }
        }
        made.push((pass, platform.clone()));
    }
    // One platform named on the command line or none, without provenance: an image;
    // otherwise an index, each image's attestation beside it (as BuildKit makes it).
    let (top, id) = match (made.as_slice(), &opts.provenance) {
        ([(pass, _)], None) => (pass.manifest.clone(), pass.id.clone()),
        (_, request) => {
            let mut entries: Vec<oci_spec::image::Descriptor> = Vec::new();
            let mut attestations = Vec::new();
            let finished =
                humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
            for (pass, platform) in &made {
                let mut entry = pass.manifest.clone();
                entry.set_platform(Some(platform.to_oci()));
                entries.push(entry);
                if let Some(request) = request {
                    let statement = provenance::statement(
                        request,
                        opts,
                        pass.manifest.digest(),
                        platform,
                        &pass.dependencies,
                        &finished,
                    );
                    attestations.push(provenance::attach(store, &pass.manifest, &statement)?);
                }
            }
            entries.extend(attestations);
            let index = store.write_index_entries(&entries)?;
            let digest = index.digest().clone();
            (index, digest)
        }
    };
    if opts.tags.is_empty() {
        store.keep_untagged(&top)?;
    }
    for tag in &opts.tags {
        store.tag(tag, &top)?;
    }
    if let Some(to) = &opts.cache_to {
        let id = step_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        steps::export_cache(store, to, &cached, id, progress)?;
    }
    Ok(Built {
        manifest: top.digest().clone(),
        id,
        tags: opts.tags.clone(),
        platforms: made
            .into_iter()
            .map(|(pass, p)| (p, pass.manifest.digest().clone()))
            .collect(),
    })
}

/// A step's error, naming its line and its first line of text.
fn step_error(instr: &Instruction, message: impl Into<String>) -> Error {
    let first = instr.original.lines().next().unwrap_or_default();
    Error::Step {
        step: format!("line {}: {first}", instr.span.start.line),
        message: message.into(),
    }
}
