//! What a build takes from outside its Dockerfile before the stages run: the `--cache-from`
//! caches, the base images (pulled when the store lacks them), the check that a foreign
//! platform's RUN steps can run here, and a base image's config and layers as a stage's
//! start.

use std::time::Instant;

use kiln_image::digest::DiffId;
use kiln_image::Platform;

use super::{Builder, Layer, State};
use crate::ast::Command;
use crate::build::cache;
use crate::build::provenance::Dependency;
use crate::build::{step_error, Event};
use crate::Error;

impl Builder<'_> {
    /// Reads each `--cache-from` cache, each as a step of its own; one that cannot be
    /// read is said and skipped (the build goes on without it).
    pub(super) fn import_caches(&mut self, progress: &(dyn Fn(Event) + Sync)) {
        let total = self.opts.cache_from.len();
        for (index, from) in self.opts.cache_from.iter().enumerate() {
            let id = self.next_id();
            let text = format!("import cache from {}", from.location);
            progress(Event::Step {
                id,
                stage: "cache",
                index: index + 1,
                total,
                text: &text,
            });
            let start = Instant::now();
            let line = match self.remote.import(self.store, from) {
                Ok(n) => format!("{n} cached steps"),
                Err(e) => format!("not used: {e}"),
            };
            progress(Event::Output { id, line: &line });
            progress(Event::Done {
                id,
                seconds: start.elapsed().as_secs_f64(),
            });
        }
    }

    /// Refuses, before anything runs, a stage with RUN steps for a platform this machine
    /// cannot run (no emulator registered), naming its line.
    pub(super) fn check_emulation(&self, order: &[usize]) -> Result<(), Error> {
        for i in order {
            let stage = &self.plan.stages[*i];
            let runs = stage
                .instructions
                .iter()
                .any(|instr| matches!(instr.command, Command::Run(_)));
            let platform = &self.stage_platforms[*i];
            if !runs || Platform::host().accepts(platform) {
                continue;
            }
            let runnable = if platform.os == "linux" {
                self.exec.can_run(platform)
            } else {
                Err("kiln runs Linux programs only".to_string())
            };
            runnable.map_err(|reason| {
                step_error(stage.from, format!("RUN steps for {platform}: {reason}"))
            })?;
        }
        Ok(())
    }

    /// Pulls the images the build takes files from that the store lacks for their
    /// platform (all of them with `--pull`), each shown as a step of its own.
    pub(super) fn fetch_images(
        &self,
        names: &[(String, Platform)],
        progress: &(dyn Fn(Event) + Sync),
    ) -> Result<(), Error> {
        let wanted: Vec<&(String, Platform)> = names
            .iter()
            .filter(|(n, p)| self.opts.pull || self.store.resolve_for(n, p).is_err())
            .collect();
        for (index, (name, platform)) in wanted.iter().enumerate() {
            let id = self.next_id();
            let text = if *platform == Platform::host() {
                format!("pull {name}")
            } else {
                format!("pull {name} ({platform})")
            };
            progress(Event::Step {
                id,
                stage: "pull",
                index: index + 1,
                total: wanted.len(),
                text: &text,
            });
            let start = Instant::now();
            let reference = kiln_image::Reference::parse(name)?;
            let report = |line: String| progress(Event::Output { id, line: &line });
            if let Err(e) = kiln_image::client::pull_image(
                self.store,
                &reference,
                &platform.to_string(),
                &report,
            ) {
                if self.store.resolve_for(name, platform).is_err() {
                    return Err(Error::PullFailed {
                        name: name.to_string(),
                        source: e,
                    });
                }
                // --pull and the registry cannot be reached: the image at hand will do.
                report(format!("{e}; using the image in the store"));
            }
            progress(Event::Done {
                id,
                seconds: start.elapsed().as_secs_f64(),
            });
        }
        Ok(())
    }

    /// A base image from the store, for `platform`: its config and its layers (not
    /// unpacked yet).
    pub(super) fn image_state(&self, name: &str, platform: &Platform) -> Result<State, Error> {
        let image = self
            .store
            .resolve_for(name, platform)
            .map_err(|source| Error::NoImage { source })?;
        let used = Dependency {
            name: name.to_string(),
            platform: platform.clone(),
            manifest: image.manifest_digest.clone(),
        };
        let mut dependencies = self.dependencies.lock().expect("lock");
        if !dependencies.contains(&used) {
            dependencies.push(used);
        }
        drop(dependencies);
        let mut layers = Vec::new();
        for (layer, diff_id) in image
            .manifest
            .layers()
            .iter()
            .zip(image.config.rootfs().diff_ids())
        {
            let diff_id = DiffId::parse(diff_id)?;
            layers.push(Layer {
                snapshot: self.store.snapshot_path(&diff_id),
                diff_id,
                blob: layer.clone(),
            });
        }
        // By config (its digest covers the layers' diffIDs), not by manifest: the same
        // image pulled with other compression keeps its cache, here and on another runner.
        Ok(State {
            config_bytes: image.config_bytes.clone(),
            layers,
            key: cache::key(&["image", image.id().as_ref()]),
            steps: Vec::new(),
            uncached: false,
        })
    }
}
