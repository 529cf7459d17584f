//! A step that makes a layer (RUN, COPY, ADD, WORKDIR): its cache key and lookup, and on a
//! miss the step run or the files copied into a fresh upper directory, written as a layer
//! into the store and kept as the layer's snapshot — or, when a COPY left its large files
//! as placeholders (their data read from the context straight into the layer), as the
//! layer's outline, the snapshot unpacked from the layer when a step first runs on it.

use std::path::Path;

use kiln_image::digest::DiffId;
use kiln_image::layer::{
    overlay_changes, write_changes_with, Compression, LayerOptions, Placeholders,
};
use kiln_image::store::TrustedBlobWriter;
use kiln_image::tree::resolve_user;
use oci_spec::image::{Descriptor, MediaType};

use super::copying::{copy_attrs, copy_dest, resolve_dest, write_heredocs, CopyInput};
use super::union::settle_dirs;
use super::{workdir, Builder, Layer, State, Step, Views};
use crate::ast::{Command, Instruction};
use crate::build::cache::{self, Record};
use crate::build::{copy, key, step_error, Event};
use crate::Error;

impl Builder<'_> {
    /// RUN, COPY or ADD: from the cache, or made now.
    pub(super) fn layer_step(
        &self,
        step: &Step,
        expanded: &Instruction,
        state: &mut State,
    ) -> Result<Record, Error> {
        let Step {
            instr,
            config,
            args,
            done,
            id,
            progress,
        } = *step;
        let text = key::instruction_part(expanded);
        let env_key = key::environment_part(
            args,
            &config.env(),
            &config.str("User").unwrap_or_default(),
            &config.str("WorkingDir").unwrap_or_default(),
        );
        // COPY --link makes a layer that does not depend on what is below it: its cache key
        // leaves the parent out, so it survives a change of base.
        let linked_copy = match &expanded.command {
            Command::Copy(c) => c.spec.link,
            Command::Add(a) => a.spec.link,
            _ => false,
        };
        let parent_key = if linked_copy {
            "link".to_string()
        } else {
            state.key.to_string()
        };
        // COPY --from is keyed by the content it copies, which takes unpacking the source
        // to read. First a key from the source's own cache key, known without that: a hit
        // there names the content key the step goes on with, and unpacks nothing.
        let quick = match &expanded.command {
            Command::Copy(c) if !state.uncached => match &c.from {
                // A directory context is keyed by its content, as the build context is.
                Some(name) if self.context_dir(name).is_some() => None,
                Some(name) => Some(key::step(
                    &parent_key,
                    &text,
                    &env_key,
                    &format!(
                        "from {}",
                        self.source_key(instr, self.source_name(name), done)?
                    ),
                )),
                None => None,
            },
            _ => None,
        };
        if let Some(quick) = &quick {
            if let Some((record, blob)) = self.lookup(quick, id, progress)? {
                if let Some(then) = record.then {
                    state.push_layer(self.store, &record, blob);
                    state.stepped(*quick, &record);
                    state.stepped(
                        then,
                        &Record {
                            then: None,
                            ..record.clone()
                        },
                    );
                    progress(Event::Cached { id });
                    return Ok(record);
                }
            }
        }
        let content = match &expanded.command {
            Command::Copy(_) | Command::Add(_) => Some(self.copy_sources(instr, expanded, done)?),
            _ => None,
        };
        let (content_key, files) = match (&content, &expanded.command) {
            (Some(c), _) => (c.key.clone(), c.files.clone()),
            (None, Command::Run(run)) => self.mounts_key(instr, run, done)?,
            _ => Default::default(),
        };
        let key = key::step(&parent_key, &text, &env_key, &content_key);
        // What a hit on `quick` will say next time.
        let remember_quick = |state: &mut State, record: &Record| -> Result<(), Error> {
            if let Some(quick) = &quick {
                let alias = Record {
                    then: Some(key),
                    ..record.clone()
                };
                self.cache.put(quick, &alias)?;
                state.stepped(*quick, &alias);
            }
            Ok(())
        };
        let inputs = cache::Inputs {
            parent: state.key.to_string(),
            instruction: text.clone(),
            environment: env_key.clone(),
            files,
            result: None,
        };
        let slot = cache::key(&[
            &self.opts.context.display().to_string(),
            &instr.span.start.line.to_string(),
            &instr.original,
        ])
        .to_string();
        if !state.uncached {
            if let Some((record, blob)) = self.lookup(&key, id, progress)? {
                if let Some(v) = &content.as_ref().and_then(|c| c.view.clone()) {
                    self.exec.unview(v);
                }
                remember_quick(state, &record)?;
                state.push_layer(self.store, &record, blob);
                state.stepped(key, &record);
                progress(Event::Cached { id });
                return Ok(record);
            }
            let reason = inputs.why_not(self.cache.last_inputs(&slot).as_ref());
            progress(Event::Miss {
                id,
                reason: &reason,
            });
        }
        // The `--from` view a COPY reads stays mounted until the step ends: the layer
        // reads placeholders' data from it.
        let _views = Views {
            exec: self.exec,
            at: content
                .as_ref()
                .and_then(|c| c.view.clone())
                .into_iter()
                .collect(),
        };
        // A RUN step runs on the layers' data; the others read names, metadata and
        // account files, which an outline holds as well.
        let below = if matches!(expanded.command, Command::Run(_)) {
            self.unpack(&state.layers)?;
            Vec::new()
        } else {
            self.outlines(&state.layers)?
        };
        let scratch = self.snapshots.scratch()?;
        let upper = scratch.path().join("upper");
        std::fs::create_dir(&upper).map_err(|e| Error::Io {
            op: "create directory",
            path: upper.clone(),
            source: e,
        })?;
        let (changes_dir, placeholders) = match &expanded.command {
            Command::Run(run) => {
                self.run_step(step, run, state, scratch.path(), &upper)?;
                (overlay_changes(&upper)?, Placeholders::new())
            }
            Command::Workdir(_) => {
                let dir = config.str("WorkingDir").unwrap_or_else(|| "/".into());
                let user = resolve_user(&config.str("User").unwrap_or_default(), &below)
                    .map_err(|m| step_error(instr, m))?;
                workdir::make(&below, &dir, user.uid, user.gid, &upper)
                    .map_err(|e| step_error(instr, format!("making {dir}: {e}")))?;
                (added(&upper)?, Placeholders::new())
            }
            _ => {
                let CopyInput {
                    root,
                    sources,
                    view,
                    exclude,
                    downloads,
                    ..
                } = content.expect("COPY has sources");
                // With --link the destination is not looked up in the layers below (they may
                // change under a linked layer), as BuildKit does.
                let dest = copy_dest(expanded, config);
                let dest = if linked_copy {
                    dest
                } else {
                    resolve_dest(&below, &dest)
                };
                let attrs = copy_attrs(expanded, &below).map_err(|m| step_error(instr, m))?;
                let ignore = if view.is_none() && downloads.is_none() {
                    Some(&self.opts.ignore)
                } else {
                    None
                };
                // Only some sources changed since this step last ran: start from its
                // previous result (hard links) and copy just those.
                let previous = self
                    .cache
                    .last_inputs(&slot)
                    .filter(|last| view.is_none() && inputs.only_files_changed_from(last));
                let previous = previous
                    .and_then(|last| {
                        Some((self.store.snapshot_path(last.result.as_ref()?), last.files))
                    })
                    .filter(|(p, _)| p.is_dir());
                let mut linked = std::collections::HashSet::new();
                if let Some((snapshot, before)) = previous {
                    copy::link_tree(&snapshot, &upper)
                        .map_err(|e| step_error(instr, e.to_string()))?;
                    linked = inputs
                        .files
                        .iter()
                        .filter(|(k, v)| before.get(*k) == Some(*v))
                        .map(|(k, _)| k.clone())
                        .collect();
                }
                let add = matches!(expanded.command, Command::Add(_)) && downloads.is_none();
                // Large files may stay in their source until the layer is written when
                // nothing else writes into the step's directory (an ADD's archives and
                // downloads, heredocs).
                let placeholders = matches!(expanded.command, Command::Copy(_))
                    && downloads.is_none()
                    && instr.heredocs.is_empty();
                let job = copy::CopyJob {
                    root: &root,
                    sources: &sources,
                    dest: &dest,
                    ignore,
                    attrs,
                    linked: &linked,
                    extract_archives: add,
                    exclude: exclude.as_ref(),
                    parents: matches!(&expanded.command, Command::Copy(c) if c.parents),
                    placeholders,
                };
                let placeholders =
                    copy::copy(&job, &upper).map_err(|e| step_error(instr, e.to_string()))?;
                write_heredocs(expanded, &dest, &upper, attrs)
                    .map_err(|e| step_error(instr, e.to_string()))?;
                // The destination and its parents: as the image has them, or new.
                let settle_on = if linked_copy { &[][..] } else { &below[..] };
                settle_dirs(
                    settle_on,
                    Path::new(dest.trim_start_matches('/')),
                    &upper,
                    (attrs.uid, attrs.gid),
                )
                .map_err(|e| step_error(instr, format!("{dest}: {e}")))?;
                (added(&upper)?, placeholders)
            }
        };
        // The result is the layer's snapshot, or its outline when it holds placeholders.
        let record = if changes_dir.is_empty() {
            Record {
                diff_id: None,
                then: None,
                created: Some(self.created.clone()),
            }
        } else {
            let opts = LayerOptions {
                compression: Compression::None,
                source_date_epoch: self.opts.source_date_epoch,
            };
            let (info, writer) = write_changes_with(
                &upper,
                &changes_dir,
                &placeholders,
                opts,
                TrustedBlobWriter::new(self.store)?,
            )?;
            writer.commit(&info.digest)?;
            let size = info.size;
            let diff_id = DiffId::from(info.diff_id);
            let snapshot = if placeholders.is_empty() {
                self.snapshots.adopt(self.store, &upper, &diff_id)?
            } else {
                self.store.adopt_outline(&upper, &diff_id)?;
                self.store.snapshot_path(&diff_id)
            };
            state.layers.push(Layer {
                blob: uncompressed(&diff_id, size),
                diff_id: diff_id.clone(),
                snapshot,
            });
            Record {
                diff_id: Some(diff_id),
                then: None,
                created: Some(self.created.clone()),
            }
        };
        self.cache.put(&key, &record)?;
        remember_quick(state, &record)?;
        let inputs = cache::Inputs {
            result: record.diff_id.clone(),
            ..inputs
        };
        self.cache.remember_inputs(&slot, &inputs);
        state.stepped(key, &record);
        Ok(record)
    }
}

/// The descriptor of a layer built here: an uncompressed tar whose digest is its diffID.
fn uncompressed(diff_id: &DiffId, size: u64) -> Descriptor {
    Descriptor::new(MediaType::ImageLayer, size, diff_id.digest().clone())
}

/// Everything in `upper` (a step that only adds: COPY, ADD, WORKDIR), as the layer's
/// changes.
fn added(upper: &Path) -> Result<Vec<kiln_image::layer::Change>, Error> {
    let mut all = Vec::new();
    for e in walkdir::WalkDir::new(upper)
        .min_depth(1)
        .sort_by_file_name()
    {
        let e = e.map_err(|e| Error::Io {
            op: "read",
            path: upper.to_path_buf(),
            source: e.into(),
        })?;
        all.push(kiln_image::layer::Change::Upsert(
            e.path().strip_prefix(upper).expect("under").to_path_buf(),
        ));
    }
    Ok(all)
}
