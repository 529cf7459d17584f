//! Blobs: whether a repository has one, reading it (whole or a range), unlinking it.

use kiln_image::digest::Digest;

use super::Registry;
use crate::errcode::{ApiError, Code};
use crate::paths;
use crate::storage::ByteStream;

/// A blob's bytes, or a part of them.
pub struct BlobRange {
    /// Total size of the blob.
    pub size: u64,
    /// The inclusive byte range sent, when a range was asked for.
    pub range: Option<(u64, u64)>,
    /// The bytes (of the range, when one was asked for).
    pub body: ByteStream,
}

impl Registry {
    /// Whether `name` holds the blob (uploaded to it, mounted into it, or a manifest of it).
    pub(super) async fn linked(&self, name: &str, d: &Digest) -> Result<bool, ApiError> {
        Ok(self
            .storage
            .stat(&paths::layer_link(name, d))
            .await?
            .is_some()
            || self
                .storage
                .stat(&paths::revision(name, d))
                .await?
                .is_some())
    }

    /// Whether the link at `link` exists and its blob `d` too, marking the link as used
    /// now. Garbage collection keeps what was used within its grace period and looks at
    /// the links again after setting a blob aside, so a blob that a manifest being pushed
    /// refers to is never collected from under it: either the push sees it gone (and is
    /// refused cleanly), or the collection sees the fresh link (and puts it back).
    pub(super) async fn claim(&self, link: &str, d: &Digest) -> Result<bool, ApiError> {
        match self.storage.get(link).await {
            Ok(content) => {
                self.storage.put(link, content).await?;
                Ok(self.storage.stat(&paths::blob(d)).await?.is_some())
            }
            Err(crate::Error::NotFound(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The blob's size, if `name` holds it.
    pub async fn blob_size(&self, name: &str, d: &Digest) -> Result<u64, ApiError> {
        if self.linked(name, d).await? {
            if let Some(meta) = self.storage.stat(&paths::blob(d)).await? {
                return Ok(meta.size);
            }
        }
        Err(ApiError::with(
            Code::BlobUnknown,
            serde_json::json!({"digest": d.to_string()}),
        ))
    }

    /// The blob, or the part `range` names: `bytes=START-END`, `bytes=START-` or
    /// `bytes=-SUFFIX`. A range it cannot satisfy gets 416.
    pub async fn blob(
        &self,
        name: &str,
        d: &Digest,
        range: Option<&str>,
    ) -> Result<BlobRange, ApiError> {
        let size = self.blob_size(name, d).await?;
        let wanted = match range {
            None => None,
            Some(r) => Some(parse_range(r, size).ok_or_else(|| {
                ApiError::new(
                    Code::RangeInvalid,
                    format!("cannot serve {r} of a {size}-byte blob"),
                )
            })?),
        };
        let (offset, len) = match wanted {
            Some((start, end)) => (start, Some(end - start + 1)),
            None => (0, None),
        };
        let body = self.storage.reader(&paths::blob(d), offset, len).await?;
        Ok(BlobRange {
            size,
            range: wanted,
            body,
        })
    }

    /// Unlinks the blob from `name`; the bytes stay until garbage collection finds
    /// nothing else needs them.
    pub async fn delete_blob(&self, name: &str, d: &Digest) -> Result<(), ApiError> {
        self.deletable()?;
        let link = paths::layer_link(name, d);
        if self.storage.stat(&link).await?.is_none() {
            return Err(ApiError::with(
                Code::BlobUnknown,
                serde_json::json!({"digest": d.to_string()}),
            ));
        }
        self.storage.delete(&link).await?;
        Ok(())
    }
}

/// The inclusive byte range a `Range` header asks of a `size`-byte blob.
fn parse_range(header: &str, size: u64) -> Option<(u64, u64)> {
    let spec = header.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || size == 0 {
        return None;
    }
    let (start, end) = spec.split_once('-')?;
    let (start, end) = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok()?;
            (size.checked_sub(n.min(size))?, size - 1)
        }
        (s, "") => (s.parse().ok()?, size - 1),
        (s, e) => (s.parse().ok()?, e.parse::<u64>().ok()?.min(size - 1)),
    };
    (start <= end && start < size).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=50-500", 100), Some((50, 99)));
        for bad in [
            "bytes=100-",
            "bytes=9-1",
            "items=0-1",
            "bytes=0-1,3-4",
            "bytes=x-",
        ] {
            assert_eq!(parse_range(bad, 100), None, "{bad}");
        }
    }
}
