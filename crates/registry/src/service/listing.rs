//! Listings: a repository's tags, the catalog of repositories (both paginated with `n` and
//! `last`, in lexical order), and the referrers of a manifest.

use bytes::Bytes;
use kiln_image::digest::Digest;
use serde_json::{json, Value};

use super::Registry;
use crate::errcode::{ApiError, Code};
use crate::names::valid_name;
use crate::paths;

/// One page of a listing, and the `last` to ask for the next one (None: this is the end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The names on this page, sorted.
    pub items: Vec<String>,
    /// The `last` of the next page's request, if there is one.
    pub next: Option<String>,
}

/// The page of `all` (sorted) after `last`, at most `n` long.
fn paginate(all: Vec<String>, n: Option<usize>, last: Option<&str>) -> Page {
    let rest: Vec<String> = all
        .into_iter()
        .filter(|t| last.is_none_or(|l| t.as_str() > l))
        .collect();
    match n {
        Some(n) if rest.len() > n => {
            let items: Vec<String> = rest.into_iter().take(n).collect();
            let next = items.last().cloned();
            Page { items, next }
        }
        _ => Page {
            items: rest,
            next: None,
        },
    }
}

impl Registry {
    /// The tags of repository `name`, a page of at most `n` after `last` (the spec's
    /// `n` and `last`); `NAME_UNKNOWN` when there is no such repository.
    pub async fn tags(
        &self,
        name: &str,
        n: Option<usize>,
        last: Option<&str>,
    ) -> Result<Page, ApiError> {
        if !self.repository_exists(name).await? {
            return Err(ApiError::new(
                Code::NameUnknown,
                format!("no repository {name}"),
            ));
        }
        let tags = self.storage.list(&paths::tags(name)).await?;
        Ok(paginate(tags, n, last))
    }

    /// A repository is known once a manifest was pushed to it (uploads alone do not
    /// make one, as in distribution).
    async fn repository_exists(&self, name: &str) -> Result<bool, ApiError> {
        Ok(!self.storage.list(&paths::revisions(name)).await?.is_empty())
    }

    /// The repositories (those holding a manifest or a blob) that `visible` keeps, a page
    /// of at most `n` after `last`.
    pub async fn catalog(
        &self,
        n: Option<usize>,
        last: Option<&str>,
        visible: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<Page, ApiError> {
        let mut found = self.repositories(false).await?;
        found.retain(|r| visible(r));
        Ok(paginate(found, n, last))
    }

    /// Every repository directory, those holding only upload sessions too (for gc).
    pub async fn all_repositories(&self) -> Result<Vec<String>, ApiError> {
        self.repositories(true).await
    }

    /// The repositories, sorted: those with a manifest or a blob, and with `uploads`
    /// those with only upload sessions (refused or abandoned; not a repository to show).
    async fn repositories(&self, uploads: bool) -> Result<Vec<String>, ApiError> {
        let mut found = Vec::new();
        let mut todo = vec![String::new()];
        while let Some(prefix) = todo.pop() {
            let dir = if prefix.is_empty() {
                "repositories".to_string()
            } else {
                paths::repo(&prefix)
            };
            for entry in self.storage.list(&dir).await? {
                if entry.starts_with('_') {
                    let holds = entry == "_manifests" || entry == "_layers" || uploads;
                    if holds && !prefix.is_empty() && !found.contains(&prefix) {
                        found.push(prefix.clone());
                    }
                    continue;
                }
                let child = if prefix.is_empty() {
                    entry
                } else {
                    format!("{prefix}/{entry}")
                };
                if valid_name(&child) {
                    todo.push(child);
                }
            }
        }
        found.sort();
        Ok(found)
    }

    /// The referrers of `subject` in `name` as an OCI index, filtered by `artifact_type`.
    pub async fn referrers(
        &self,
        name: &str,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Bytes, ApiError> {
        let dir = paths::referrers(name, subject);
        let mut manifests = Vec::new();
        for entry in self.storage.list(&dir).await? {
            let Ok(bytes) = self.storage.get(&format!("{dir}/{entry}")).await else {
                continue;
            };
            let Ok(descriptor) = serde_json::from_slice::<Value>(&bytes) else {
                continue;
            };
            if artifact_type
                .is_none_or(|t| descriptor.get("artifactType").and_then(Value::as_str) == Some(t))
            {
                manifests.push(descriptor);
            }
        }
        let index = json!({
            "schemaVersion": 2,
            "mediaType": kiln_image::media::OCI_INDEX,
            "manifests": manifests,
        });
        Ok(Bytes::from(index.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::{paginate, Page};

    #[test]
    fn pages_follow_last_and_n() {
        let all: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let page = |n, last| paginate(all.clone(), n, last);
        assert_eq!(
            page(Some(2), None),
            Page {
                items: vec!["a".into(), "b".into()],
                next: Some("b".into())
            }
        );
        assert_eq!(
            page(Some(2), Some("b")),
            Page {
                items: vec!["c".into(), "d".into()],
                next: None
            }
        );
        assert_eq!(
            page(None, Some("c")),
            Page {
                items: vec!["d".into()],
                next: None
            }
        );
        assert_eq!(page(Some(0), None).items, Vec::<String>::new());
    }
}
