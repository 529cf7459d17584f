//! Garbage collection that is safe while the registry serves.
//!
//! Mark: in each repository, the tagged manifests, the manifests they reach (index
//! children, referrers of kept manifests) and anything used within the grace period are
//! kept; with them, the blobs they name. Sweep: other manifest links go, then layer links
//! no kept manifest names, then blobs nothing keeps, then upload sessions abandoned for a
//! day. A blob is first set aside (renamed into `_trash/`), then the links to it are
//! looked at again: a push that referred to it meanwhile has renewed a link (see
//! `Registry::claim`), and the blob goes back; otherwise it is deleted. A push that came
//! too late finds the blob gone and is refused cleanly, never left pointing at nothing.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kiln_image::digest::Digest;
use serde_json::Value;

use crate::names::parse_digest;
use crate::paths;
use crate::service::Registry;
use crate::storage::Storage;
use crate::Error;

/// Upload sessions older than this are abandoned.
const UPLOAD_TTL: Duration = Duration::from_secs(24 * 3600);

/// How a collection runs (`kiln registry gc`).
#[derive(Debug, Clone)]
pub struct GcOptions {
    /// Say what would go; remove nothing.
    pub dry_run: bool,
    /// Anything written or used more recently than this is kept.
    pub grace: Duration,
}

/// What a collection removed (or, dry, would remove).
#[derive(Debug, Default)]
pub struct GcReport {
    /// `repository@digest` of the manifests removed.
    pub manifests: Vec<String>,
    /// Blobs removed, with their sizes.
    pub blobs: Vec<(String, u64)>,
    /// `repository/session` of the abandoned uploads removed.
    pub uploads: Vec<String>,
}

impl GcReport {
    /// The bytes the removed blobs held.
    pub fn freed(&self) -> u64 {
        self.blobs.iter().map(|(_, s)| s).sum()
    }
}

fn digests_under(names: Vec<String>, alg: &str) -> Vec<Digest> {
    names
        .into_iter()
        .filter_map(|hex| parse_digest(&format!("{alg}:{hex}")))
        .collect()
}

struct Collector {
    storage: Arc<dyn Storage>,
    opts: GcOptions,
    now: SystemTime,
}

impl Collector {
    async fn young(&self, path: &str) -> Result<bool, Error> {
        Ok(match self.storage.stat(path).await? {
            Some(meta) => {
                self.now.duration_since(meta.modified).unwrap_or_default() < self.opts.grace
            }
            None => false,
        })
    }

    /// Every `<alg>/<hex>` entry under `dir`.
    async fn digests(&self, dir: &str) -> Result<Vec<Digest>, Error> {
        let mut out = Vec::new();
        for alg in self.storage.list(dir).await? {
            out.extend(digests_under(
                self.storage.list(&format!("{dir}/{alg}")).await?,
                &alg,
            ));
        }
        Ok(out)
    }

    /// Marks one repository: the manifests to keep and the blobs they name.
    async fn mark(
        &self,
        repo: &str,
        blobs: &mut HashSet<Digest>,
    ) -> Result<(HashSet<Digest>, Vec<Digest>), Error> {
        let revisions = self.digests(&paths::revisions(repo)).await?;
        let mut todo: Vec<Digest> = Vec::new();
        for tag in self.storage.list(&paths::tags(repo)).await? {
            if let Ok(bytes) = self.storage.get(&paths::tag(repo, &tag)).await {
                todo.extend(parse_digest(String::from_utf8_lossy(&bytes).trim()));
            }
        }
        for d in &revisions {
            if self.young(&paths::revision(repo, d)).await? {
                todo.push(d.clone());
            }
        }
        let mut kept = HashSet::new();
        while let Some(d) = todo.pop() {
            if !kept.insert(d.clone()) {
                continue;
            }
            blobs.insert(d.clone());
            let Ok(body) = self.storage.get(&paths::blob(&d)).await else {
                continue;
            };
            let Ok(m) = serde_json::from_slice::<Value>(&body) else {
                continue;
            };
            let descriptors = |key: &str| -> Vec<Digest> {
                m.get(key)
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| parse_digest(x.get("digest")?.as_str()?))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            todo.extend(descriptors("manifests"));
            blobs.extend(descriptors("layers"));
            blobs.extend(
                m.get("config")
                    .and_then(|c| parse_digest(c.get("digest")?.as_str()?)),
            );
            // Signatures, SBOMs and other referrers stay with what they refer to.
            let referrers = paths::referrers(repo, &d);
            for entry in self.storage.list(&referrers).await? {
                if let Some((alg, hex)) = entry.split_once('-') {
                    todo.extend(parse_digest(&format!("{alg}:{hex}")));
                }
            }
        }
        let dropped = revisions
            .into_iter()
            .filter(|d| !kept.contains(d))
            .collect();
        Ok((kept, dropped))
    }

    /// Removes a manifest from `repo`: its link and the referrer entry it made.
    async fn drop_manifest(&self, repo: &str, d: &Digest) -> Result<(), Error> {
        if let Ok(body) = self.storage.get(&paths::blob(d)).await {
            let subject = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|m| parse_digest(m.get("subject")?.get("digest")?.as_str()?));
            if let Some(s) = subject {
                self.storage.delete(&paths::referrer(repo, &s, d)).await?;
            }
        }
        self.storage.delete(&paths::revision(repo, d)).await
    }

    /// Sets the blob aside, looks at its links again, then deletes it or puts it back.
    async fn drop_blob(&self, d: &Digest, links: &[String]) -> Result<bool, Error> {
        let blob = paths::blob(d);
        let aside = format!("_trash/{}-{}", d.digest(), uuid::Uuid::new_v4().simple());
        match self.storage.rename(&blob, &aside).await {
            Ok(()) => {}
            Err(Error::NotFound(_)) => return Ok(false),
            Err(e) => return Err(e),
        }
        for link in links {
            if self.young(link).await? {
                self.storage.rename(&aside, &blob).await?;
                return Ok(false);
            }
        }
        self.storage.delete(&aside).await?;
        Ok(true)
    }
}

/// Collects garbage in the registry's storage (see the module's documentation).
pub async fn collect(registry: &Registry, opts: GcOptions) -> Result<GcReport, Error> {
    let c = Collector {
        storage: registry.storage().clone(),
        opts,
        now: SystemTime::now(),
    };
    let mut report = GcReport::default();
    let repos = registry
        .all_repositories()
        .await
        .map_err(|e| Error::Listing(e.to_string()))?;
    // Mark every repository first: a blob one repository keeps stays for all.
    let mut marks = Vec::new();
    for repo in &repos {
        let mut blobs = HashSet::new();
        let (kept, dropped) = c.mark(repo, &mut blobs).await?;
        marks.push((repo, kept, dropped, blobs));
    }
    let mut keep: HashSet<Digest> = HashSet::new();
    // Every link to each blob, to look at again before it goes.
    let mut links: HashMap<Digest, Vec<String>> = HashMap::new();
    for (repo, kept, dropped, blobs) in marks {
        for d in dropped {
            report.manifests.push(format!("{repo}@{d}"));
            if !c.opts.dry_run {
                c.drop_manifest(repo, &d).await?;
            }
        }
        for d in &kept {
            links
                .entry(d.clone())
                .or_default()
                .push(paths::revision(repo, d));
        }
        for d in c.digests(&format!("{}/_layers", paths::repo(repo))).await? {
            let link = paths::layer_link(repo, &d);
            if blobs.contains(&d) || c.young(&link).await? {
                keep.insert(d.clone());
                links.entry(d).or_default().push(link);
            } else if !c.opts.dry_run {
                c.storage.delete(&link).await?;
            }
        }
        keep.extend(blobs);
        for session in c.storage.list(&paths::uploads(repo)).await? {
            let started = paths::upload_started(repo, &session);
            // A session being made has no start time yet for a moment: it stays.
            let abandoned = match c.storage.stat(&started).await? {
                Some(meta) => {
                    c.now.duration_since(meta.modified).unwrap_or_default()
                        > UPLOAD_TTL.max(c.opts.grace)
                }
                None => false,
            };
            if abandoned {
                report.uploads.push(format!("{repo}/{session}"));
                if !c.opts.dry_run {
                    c.storage.delete(&paths::upload(repo, &session)).await?;
                }
            }
        }
    }
    for d in c.digests("blobs").await? {
        if keep.contains(&d) || c.young(&paths::blob(&d)).await? {
            continue;
        }
        let size = c
            .storage
            .stat(&paths::blob(&d))
            .await?
            .map_or(0, |m| m.size);
        let links = links.remove(&d).unwrap_or_default();
        if c.opts.dry_run || c.drop_blob(&d, &links).await? {
            report.blobs.push((d.to_string(), size));
        }
    }
    Ok(report)
}
