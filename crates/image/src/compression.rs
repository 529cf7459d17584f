//! How a layer blob is compressed: the names and media types, without the compressors
//! (those are the `layer` module's, with the `full` feature).

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Plain tar: the build path (compression happens once, on push, save or --output).
    None,
    /// gzip, what every registry and runtime reads.
    Gzip,
    /// zstd: smaller and faster; not every runtime reads it.
    Zstd,
}

impl Compression {
    /// The name users write (`--compression gzip`).
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    /// The OCI layer media type for this compression.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::None => crate::media::OCI_LAYER,
            Compression::Gzip => crate::media::OCI_LAYER_GZIP,
            Compression::Zstd => crate::media::OCI_LAYER_ZSTD,
        }
    }

    /// Recognises gzip and zstd by their magic numbers; anything else is plain.
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

impl std::str::FromStr for Compression {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" | "uncompressed" => Ok(Compression::None),
            "gzip" => Ok(Compression::Gzip),
            "zstd" => Ok(Compression::Zstd),
            _ => Err(format!("unknown compression {s:?}: use gzip, zstd or none")),
        }
    }
}
