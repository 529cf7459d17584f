//! The build itself: stage by stage, step by step.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use kiln_image::digest::{DiffId, Digest};
use kiln_image::store::Store;
use kiln_image::Platform;
use oci_spec::image::{Descriptor, MediaType};
use serde_json::json;

mod copying;
mod git;
mod images;
mod layer;
mod run;
mod union;
mod workdir;

use kiln_image::tree::resolve_user;

use super::cache::{self, Cache, CacheKey, Record};
use super::config::ImageConfig;
use super::copy;
use super::plan::{self, Base, Plan};
use super::provenance::Dependency;
use super::registry_cache::{self, Mode, RemoteCache};
use super::schedule;
use super::snapshots::Snapshots;
use super::step_error;
use super::{BuildOptions, Event, Executor, RunMount};
use crate::ast::{Command, Instruction, MountKind};
use crate::expand;
use crate::Error;

/// Views mounted for one step, unmounted when it ends however it ends.
struct Views<'a> {
    exec: &'a dyn Executor,
    at: Vec<PathBuf>,
}

impl Drop for Views<'_> {
    fn drop(&mut self) {
        for v in &self.at {
            self.exec.unview(v);
        }
    }
}

#[derive(Clone)]
struct Layer {
    /// Where the layer is unpacked: made when a step first needs it (see
    /// [`Builder::unpack`]), so a build whose steps all hit the cache unpacks nothing.
    snapshot: PathBuf,
    diff_id: DiffId,
    /// The blob the image holds: the uncompressed tar (digest = diffID) for layers
    /// built here, the base image's or the registry cache's own (gzip or zstd) blob.
    blob: Descriptor,
}

/// The image's tree is read from the layers' snapshots ([`kiln_image::tree`]).
impl AsRef<Path> for Layer {
    fn as_ref(&self) -> &Path {
        &self.snapshot
    }
}

/// A stage's file system and config, as far as it has been built.
#[derive(Clone)]
struct State {
    config_bytes: Vec<u8>,
    layers: Vec<Layer>,
    key: CacheKey,
    /// The steps that made `layers` (the base image's are not steps), for `--cache-to`.
    steps: Vec<registry_cache::Step>,
    /// `--no-cache`, or `--no-cache-filter` names the stage: its steps all run.
    uncached: bool,
}

impl State {
    /// The step with cache `key` is done, with `record` as its result: the next step's
    /// parent is the key `record` goes on with.
    fn stepped(&mut self, key: CacheKey, record: &Record) {
        self.steps.push(registry_cache::Step {
            key,
            record: record.clone(),
        });
        self.key = record.then.unwrap_or(key);
    }

    /// The layer of a cache hit, if it made one.
    fn push_layer(&mut self, store: &Store, record: &Record, blob: Option<Descriptor>) {
        if let (Some(diff_id), Some(blob)) = (&record.diff_id, blob) {
            self.layers.push(Layer {
                snapshot: store.snapshot_path(diff_id),
                diff_id: diff_id.clone(),
                blob,
            });
        }
    }
}

/// The context's file digests by (path, size, mtime, inode), under `KILN_ROOT`.
const CONTEXT_HASHES: &str = "context-hashes.json";

/// What a step that makes a layer reads: its instruction as written, the image config and
/// the ARGs in scope before it, the stages already built, and its progress id and sink.
#[derive(Clone, Copy)]
struct Step<'s> {
    instr: &'s Instruction,
    config: &'s ImageConfig,
    args: &'s BTreeMap<String, String>,
    done: &'s BTreeMap<usize, State>,
    id: usize,
    progress: &'s (dyn Fn(Event) + Sync),
}

pub(super) struct Builder<'a> {
    store: &'a Store,
    root: &'a Path,
    exec: &'a dyn Executor,
    opts: &'a BuildOptions,
    plan: Plan<'a>,
    snapshots: Snapshots,
    /// The read-only `/etc/hosts` and `/etc/resolv.conf` of every RUN step.
    network_files: Vec<RunMount>,
    cache: Cache,
    /// File digests by (path, size, mtime, inode), shared by the stages being built.
    hashes: Mutex<BTreeMap<String, String>>,
    /// The file `hashes` was read from, to write it again only when it changed.
    hashes_read: Vec<u8>,
    created: String,
    /// SOURCE_DATE_EPOCH set `created`: every time in the image is that one.
    created_fixed: bool,
    /// Numbers the steps of every pass of a build.
    step_id: &'a AtomicUsize,
    global: BTreeMap<String, String>,
    remote: RemoteCache,
    /// The platform this pass builds for (a multi-platform build makes one pass each).
    platform: Platform,
    /// Each stage's platform (its `FROM --platform`, else `platform`).
    stage_platforms: Vec<Platform>,
    /// The images this pass took files from, for provenance.
    dependencies: Mutex<Vec<Dependency>>,
}

/// What one pass made: its manifest (in the store, not tagged), its config's digest,
/// the steps `--cache-to` exports, and the images it used.
pub(super) struct Pass {
    pub manifest: Descriptor,
    pub id: Digest,
    pub steps: Vec<registry_cache::Step>,
    pub dependencies: Vec<Dependency>,
}

/// The history's `created_by` of an instruction, as BuildKit writes it (what `docker
/// history` shows): RUN as the command the shell ran, layer steps marked `# buildkit`,
/// every instruction on one line without its continuations.
fn created_by(instr: &Instruction, config: &ImageConfig, escape: char) -> String {
    let one_line = one_line(&instr.original, escape);
    match &instr.command {
        Command::Run(run) => {
            let argv = match &run.command {
                crate::ast::CommandLine::Exec(argv) => argv.clone(),
                crate::ast::CommandLine::Shell(s) => {
                    let mut v = config.shell();
                    v.push(s.clone());
                    v
                }
            };
            format!("RUN {} # buildkit", argv.join(" "))
        }
        Command::Copy(_) | Command::Add(_) => format!("{one_line} # buildkit"),
        _ => one_line,
    }
}

/// The first line of `original` with its continuations joined (the escape character
/// and the line break go, as the parser joins them); a heredoc body is left out.
fn one_line(original: &str, escape: char) -> String {
    let mut out = String::new();
    for (i, line) in original.lines().enumerate() {
        let line = if i == 0 { line } else { line.trim_start() };
        let trimmed = line.trim_end();
        match trimmed.strip_suffix(escape) {
            Some(rest) if !rest.ends_with(escape) => out.push_str(rest),
            _ => {
                out.push_str(trimmed);
                break;
            }
        }
    }
    out.trim().to_string()
}

impl<'a> Builder<'a> {
    pub(super) fn new(
        store: &'a Store,
        root: &'a Path,
        exec: &'a dyn Executor,
        opts: &'a BuildOptions,
        platform: Platform,
        step_id: &'a AtomicUsize,
    ) -> Result<Self, Error> {
        let created_fixed = opts.source_date_epoch.is_some();
        let created = match opts.source_date_epoch {
            Some(secs) => humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64),
            )
            .to_string(),
            None => humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        };
        let hashes_read = std::fs::read(root.join(CONTEXT_HASHES)).unwrap_or_default();
        let mut hashes: BTreeMap<String, String> =
            serde_json::from_slice(&hashes_read).unwrap_or_default();
        // Digests an earlier kiln made with another algorithm are read again.
        hashes.retain(|_, digest| digest.starts_with(copy::FILE_DIGEST_PREFIX));
        let snapshots = Snapshots::new(root)?;
        let network_files = run::network_files(
            &snapshots.build_dir().join("etc"),
            &opts.extra_hosts,
            opts.resolv_conf.as_deref(),
        )?;
        Ok(Builder {
            store,
            root,
            exec,
            opts,
            plan: Plan::new(&opts.dockerfile),
            snapshots,
            network_files,
            cache: Cache::new(root)?,
            hashes: Mutex::new(hashes),
            hashes_read,
            created,
            created_fixed,
            step_id,
            global: BTreeMap::new(),
            remote: RemoteCache::default(),
            platform,
            stage_platforms: Vec::new(),
            dependencies: Mutex::new(Vec::new()),
        })
    }

    /// Keeps the context's file digests for the next build: written whole to a temporary
    /// file and renamed (builds at once read either version), and only when they changed.
    /// They only save work, so failing to write them fails nothing.
    fn save_hashes(&self) {
        let Ok(hashes) = self.hashes.lock().map(|h| serde_json::to_vec(&*h)) else {
            return;
        };
        let Ok(hashes) = hashes else {
            return;
        };
        if hashes == self.hashes_read {
            return;
        }
        let dir = self.snapshots.build_dir();
        if let Ok(mut file) = tempfile::NamedTempFile::new_in(dir) {
            if std::io::Write::write_all(&mut file, &hashes).is_ok() {
                let _ = file.persist(self.root.join(CONTEXT_HASHES));
            }
        }
    }

    /// Builds the target stage for this pass's platform.
    pub(super) fn run(mut self, progress: &(dyn Fn(Event) + Sync)) -> Result<Pass, Error> {
        self.global = self.plan.global_scope(
            self.opts.dockerfile.escape,
            &self.opts.build_args,
            &self.platform,
        )?;
        let plan::Graph {
            bases,
            deps,
            images,
            platforms,
        } = self.plan.graph(
            self.opts.dockerfile.escape,
            &self.global,
            &self.opts.build_contexts,
            &self.platform,
        )?;
        self.stage_platforms = platforms;
        let target = self.plan.target(self.opts.target.as_deref())?;
        let order = self.plan.order(target, &deps)?;
        self.check_emulation(&order)?;
        // A stage's base for the stage's platform; images it copies from for the target's.
        let mut needed: Vec<(String, Platform)> = Vec::new();
        for i in &order {
            for name in &images[i] {
                let platform = match &bases[*i] {
                    Base::Image(base) if base == name => &self.stage_platforms[*i],
                    _ => &self.platform,
                };
                let wanted = (name.clone(), platform.clone());
                if !needed.contains(&wanted) {
                    needed.push(wanted);
                }
            }
        }
        self.fetch_images(&needed, progress)?;
        if !self.opts.no_cache {
            self.import_caches(progress);
        }
        let mut results =
            schedule::run_stages(&order, &deps, &|i| self.plan.label(i), &|i, done| {
                self.stage(i, &bases[i], done, progress)
            })?;
        self.save_hashes();
        let steps = match self.opts.cache_to.as_ref().map(|c| c.mode) {
            // The target's own steps: its state carries those of the stages it is FROM.
            Some(Mode::Min) => results[&target].steps.clone(),
            Some(Mode::Max) => {
                let mut all: Vec<registry_cache::Step> = Vec::new();
                for i in &order {
                    for step in &results[i].steps {
                        if !all.iter().any(|s| s.key == step.key) {
                            all.push(step.clone());
                        }
                    }
                }
                all
            }
            None => Vec::new(),
        };
        let (manifest, id) = self.finish(results.remove(&target).expect("the target was built"))?;
        let dependencies = std::mem::take(&mut *self.dependencies.lock().expect("lock"));
        Ok(Pass {
            manifest,
            id,
            steps,
            dependencies,
        })
    }

    fn stage(
        &self,
        i: usize,
        base: &Base,
        done: &BTreeMap<usize, State>,
        progress: &(dyn Fn(Event) + Sync),
    ) -> Result<State, Error> {
        let stage = self.plan.stages[i].clone();
        // As BuildKit labels steps: a stage's name, `stage-N` for one without, nothing
        // for the last stage when it has no name.
        let label = match &stage.name {
            Some(name) => name.clone(),
            None if i + 1 == self.plan.stages.len() => String::new(),
            None => format!("stage-{i}"),
        };
        // A build for several platforms says which one each step is for, as BuildKit does.
        let label = if self.opts.platforms.len() > 1 {
            format!("{} {label}", self.stage_platforms[i])
                .trim_end()
                .to_string()
        } else {
            label
        };
        let id = self.next_id();
        let start = Instant::now();
        let mut state = match base {
            Base::Scratch => {
                let platform = &self.stage_platforms[i];
                State {
                    config_bytes: ImageConfig::scratch(platform).to_bytes(""),
                    layers: Vec::new(),
                    key: cache::key(&["scratch", &platform.to_string()]),
                    steps: Vec::new(),
                    uncached: false,
                }
            }
            Base::Stage(j) => done.get(j).cloned().expect("dependencies are built first"),
            Base::Image(name) => self
                .image_state(name, &self.stage_platforms[i])
                .map_err(|e| step_error(stage.from, e.to_string()))?,
        };
        state.uncached = self.opts.no_cache
            || stage.name.as_ref().is_some_and(|n| {
                self.opts
                    .no_cache_filter
                    .iter()
                    .any(|f| f.eq_ignore_ascii_case(n))
            });
        let mut config = ImageConfig::from_bytes(&state.config_bytes)
            .unwrap_or_else(|| ImageConfig::scratch(&self.platform));
        // As BuildKit does, an image whose base sets no PATH gets the default one.
        if !config.env().iter().any(|(k, _)| k == "PATH") {
            config.set_env("PATH", run::DEFAULT_PATH);
        }
        // ONBUILD triggers of the base run first, and are not inherited further.
        let mut instructions = onbuild_triggers(&config).map_err(|e| step_error(stage.from, e))?;
        if !instructions.is_empty() {
            config.set("OnBuild", serde_json::Value::Null);
        }
        instructions.extend(stage.instructions.iter().map(|i| (*i).clone()));
        let total = instructions.len() + 1;
        // FROM as it resolved: the image's full name, or the stage's.
        let from_text = match base {
            Base::Scratch => "FROM scratch".to_string(),
            Base::Stage(j) => format!("FROM {}", self.plan.label(*j)),
            Base::Image(name) => format!(
                "FROM {}",
                kiln_image::Reference::parse(name).map_or_else(|_| name.clone(), |r| r.to_string())
            ),
        };
        progress(Event::Step {
            id,
            stage: &label,
            index: 1,
            total,
            text: &from_text,
        });
        progress(Event::Done {
            id,
            seconds: start.elapsed().as_secs_f64(),
        });
        let mut args: BTreeMap<String, String> = BTreeMap::new();
        let mut cmd_set = false;
        // The time of the stage so far: its base's, then each step's as it ran (a cached
        // step keeps the time it ran), so a rebuild from the cache is the same image.
        let mut when = match (self.created_fixed, config.created()) {
            (false, Some(base)) => base,
            _ => self.created.clone(),
        };
        for (n, instr) in instructions.iter().enumerate() {
            self.check_cancelled()?;
            let mut scope = args.clone();
            scope.extend(config.env());
            let expanded = expand::instruction(instr, self.opts.dockerfile.escape, &scope)?;
            let text = instr
                .original
                .lines()
                .next()
                .unwrap_or_default()
                .to_string();
            let id = self.next_id();
            progress(Event::Step {
                id,
                stage: &label,
                index: n + 2,
                total,
                text: &text,
            });
            let start = Instant::now();
            let created_by = created_by(&expanded, &config, self.opts.dockerfile.escape);
            // Whether the instruction makes (or may make) a layer.
            let layered = match &expanded.command {
                Command::Arg(decls) => {
                    for d in decls {
                        let value = self
                            .opts
                            .build_args
                            .get(&d.name)
                            .cloned()
                            .or_else(|| d.default.clone())
                            .or_else(|| self.global.get(&d.name).cloned());
                        if let Some(v) = value {
                            args.insert(d.name.clone(), v);
                        }
                    }
                    false
                }
                Command::Workdir(dir) => {
                    let cwd = config.str("WorkingDir").unwrap_or_else(|| "/".into());
                    config.set("WorkingDir", json!(super::config::join_workdir(&cwd, dir)));
                    // The directory is made as a step, owned by USER: a layer when the
                    // image lacks it, none when it has it.
                    true
                }
                Command::Run(_) | Command::Copy(_) | Command::Add(_) => true,
                Command::From(_) => unreachable!("FROM starts a stage"),
                // ENV, USER, CMD, LABEL, EXPOSE, ...: the config alone.
                other => {
                    config.apply(other, &mut cmd_set);
                    false
                }
            };
            let diff_id = if layered {
                let step = Step {
                    instr,
                    config: &config,
                    args: &args,
                    done,
                    id,
                    progress,
                };
                let record = self.layer_step(&step, &expanded, &mut state)?;
                when = self.step_time(&record);
                record.diff_id
            } else {
                None
            };
            config.add_history(&when, &created_by, diff_id.as_ref());
            progress(Event::Done {
                id,
                seconds: start.elapsed().as_secs_f64(),
            });
        }
        state.config_bytes = config.to_bytes(&when);
        Ok(state)
    }

    fn next_id(&self) -> usize {
        self.step_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The record of `key` whose layer the store has (in some form): from the local
    /// cache, else from a `--cache-from` cache (its layer downloaded now, and the record
    /// kept locally). The blob is what the image will hold.
    fn lookup(
        &self,
        key: &CacheKey,
        id: usize,
        progress: &(dyn Fn(Event) + Sync),
    ) -> Result<Option<(Record, Option<Descriptor>)>, Error> {
        let with_blob = |record: Record| match &record.diff_id {
            None => Some((record, None)),
            Some(d) => {
                let blob = self.store.layer_blob(d.digest())?;
                Some((record, Some(blob)))
            }
        };
        if let Some(hit) = self.cache.get(key).and_then(with_blob) {
            return Ok(Some(hit));
        }
        let report = |line: String| progress(Event::Output { id, line: &line });
        match self.remote.fetch(key, self.store, &report) {
            Some(record) => {
                self.cache.put(key, &record)?;
                Ok(with_blob(record))
            }
            None => Ok(None),
        }
    }

    /// Unpacks the layers not unpacked yet, for a step that runs on them.
    fn unpack(&self, layers: &[Layer]) -> Result<(), Error> {
        for l in layers {
            self.snapshots
                .ensure(self.store, &l.diff_id, l.blob.digest())?;
        }
        Ok(())
    }

    /// Each layer's tree for a step that reads only names, metadata and account files
    /// (COPY, ADD, WORKDIR): its snapshot, else its outline (a COPY of large files
    /// leaves only that), else its snapshot unpacked now.
    fn outlines(&self, layers: &[Layer]) -> Result<Vec<PathBuf>, Error> {
        layers
            .iter()
            .map(|l| {
                let outline = self.store.outline_path(&l.diff_id);
                if l.snapshot.is_dir() {
                    Ok(l.snapshot.clone())
                } else if outline.is_dir() {
                    Ok(outline)
                } else {
                    self.snapshots
                        .ensure(self.store, &l.diff_id, l.blob.digest())
                }
            })
            .collect()
    }

    /// The directory a `--build-context NAME=DIR` gives `name`.
    fn context_dir(&self, name: &str) -> Option<&Path> {
        plan::context_dir(&self.opts.build_contexts, name)
    }

    /// The stage or image `name` means (see [`plan::source_name`]).
    fn source_name<'n>(&'n self, name: &'n str) -> &'n str {
        plan::source_name(&self.opts.build_contexts, name)
    }

    /// The cache key of stage or image `name` (as `--from` names it).
    fn source_key(
        &self,
        instr: &Instruction,
        name: &str,
        done: &BTreeMap<usize, State>,
    ) -> Result<String, Error> {
        Ok(match self.plan.find(name) {
            Some(j) => done.get(&j).map(|s| s.key.to_string()).unwrap_or_default(),
            None => self
                .image_state(name, &self.platform)
                .map_err(|e| step_error(instr, e.to_string()))?
                .key
                .to_string(),
        })
    }

    /// A read-only view of stage or image `name` (as `--from` names it), mounted in
    /// `KILN_ROOT/tmp`; the caller unviews it.
    fn view_of(
        &self,
        instr: &Instruction,
        name: &str,
        done: &BTreeMap<usize, State>,
    ) -> Result<PathBuf, Error> {
        let layers = match self.plan.find(name) {
            Some(j) => done.get(&j).map(|s| s.layers.clone()).unwrap_or_default(),
            None => {
                self.image_state(name, &self.platform)
                    .map_err(|e| step_error(instr, e.to_string()))?
                    .layers
            }
        };
        self.unpack(&layers)?;
        let lowers: Vec<PathBuf> = layers.iter().rev().map(|l| l.snapshot.clone()).collect();
        let at = self
            .snapshots
            .build_dir()
            .join(format!("view-{}", self.next_id()));
        std::fs::create_dir_all(&at).map_err(|e| Error::Io {
            op: "create directory",
            path: at.clone(),
            source: e,
        })?;
        self.exec.view(&lowers, &at)?;
        Ok(at)
    }

    /// The cache key part and the files of RUN's bind mounts: the content of a context
    /// source, the key of a stage, the manifest of an image.
    fn mounts_key(
        &self,
        instr: &Instruction,
        run: &crate::ast::Run,
        done: &BTreeMap<usize, State>,
    ) -> Result<(String, BTreeMap<String, String>), Error> {
        let mut parts = Vec::new();
        let mut files = BTreeMap::new();
        for m in run.mounts.iter().filter(|m| m.kind == MountKind::Bind) {
            let dir = match &m.from {
                Some(name) => self.context_dir(name).map(|d| (d, None)),
                None => Some((self.opts.context.as_path(), Some(&self.opts.ignore))),
            };
            match (&m.from, dir) {
                (Some(name), None) => {
                    parts.push(self.source_key(instr, self.source_name(name), done)?)
                }
                (_, dir) => {
                    let (root, ignore) = dir.expect("a directory when not a stage or image");
                    let source = m.source.clone().unwrap_or_default();
                    let chosen = copy::select(root, &[source], ignore)
                        .and_then(|s| {
                            copy::content_key(
                                root,
                                &s,
                                ignore,
                                None,
                                &mut self.hashes.lock().expect("hashes lock"),
                            )
                        })
                        .map_err(|e| step_error(instr, format!("--mount: {e}")))?;
                    parts.push(chosen.0);
                    files.extend(chosen.1);
                }
            }
        }
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        Ok((cache::key(&parts).to_string(), files))
    }

    /// When a step's result was made: now for a step that ran, the recorded time for a
    /// cached one (now when the record has none, or with SOURCE_DATE_EPOCH).
    fn step_time(&self, record: &Record) -> String {
        match (&record.created, self.created_fixed) {
            (Some(t), false) => t.clone(),
            _ => self.created.clone(),
        }
    }

    fn check_cancelled(&self) -> Result<(), Error> {
        match &self.opts.cancel {
            Some(c) if c.load(std::sync::atomic::Ordering::SeqCst) => Err(Error::Interrupted),
            _ => Ok(()),
        }
    }

    fn finish(&self, state: State) -> Result<(Descriptor, Digest), Error> {
        self.check_cancelled()?;
        let mut config =
            ImageConfig::from_bytes(&state.config_bytes).expect("the builder wrote it");
        for (k, v) in &self.opts.labels {
            config.insert("Labels", k, json!(v));
        }
        // The target stage's time (see `stage`).
        let created = config.created().unwrap_or_else(|| self.created.clone());
        let config_bytes = config.to_bytes(&created);
        let config_digest = self.store.write_blob_bytes(&config_bytes)?;
        let layers: Vec<Descriptor> = state.layers.iter().map(|l| l.blob.clone()).collect();
        let config = Descriptor::new(
            MediaType::ImageConfig,
            config_bytes.len() as u64,
            config_digest.clone(),
        );
        let annotations = self.opts.annotations.clone().into_iter().collect();
        let desc = self
            .store
            .write_annotated_manifest(config, layers, annotations)?;
        Ok((desc, config_digest))
    }
}

/// The base image's ONBUILD triggers, parsed as the instructions they are.
fn onbuild_triggers(config: &ImageConfig) -> Result<Vec<Instruction>, String> {
    let texts: Vec<String> = config.onbuild();
    let mut out = Vec::new();
    for text in texts {
        let df =
            crate::parse("ONBUILD trigger", &format!("FROM scratch\n{text}\n")).map_err(|e| {
                format!("the base image's ONBUILD trigger {text:?} does not parse: {e}")
            })?;
        out.extend(df.instructions.into_iter().skip(1));
    }
    Ok(out)
}

/// Pushes the build cache to `to`; the image is built and tagged already, which a
/// failure says.
pub(super) fn export_cache(
    store: &Store,
    to: &registry_cache::CacheRef,
    steps: &[registry_cache::Step],
    id: usize,
    progress: &(dyn Fn(Event) + Sync),
) -> Result<(), Error> {
    let text = format!("export cache to {}", to.location);
    progress(Event::Step {
        id,
        stage: "cache",
        index: 1,
        total: 1,
        text: &text,
    });
    let start = Instant::now();
    let report = |line: String| progress(Event::Output { id, line: &line });
    match registry_cache::export(store, to, steps, &report) {
        Ok(digest) => report(format!("{} steps, digest: {digest}", steps.len())),
        Err(e) if to.ignore_error => report(format!("not exported (ignore-error=true): {e}")),
        Err(e) => {
            return Err(Error::CacheExport {
                location: to.location.to_string(),
                source: Box::new(e),
            })
        }
    }
    progress(Event::Done {
        id,
        seconds: start.elapsed().as_secs_f64(),
    });
    Ok(())
}
