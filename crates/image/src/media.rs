//! Media types: kiln writes OCI; it reads OCI and Docker v2 schema 2.

/// An OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// An OCI image index (several platforms, or attestations).
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// An OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// An OCI layer, plain tar.
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// An OCI layer, gzip.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// An OCI layer, zstd.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// A Docker v2 schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// A Docker manifest list (the index of Docker's format).
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// A Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// A Docker layer, plain tar.
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// A Docker layer, gzip.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// A Docker foreign layer (Windows base layers: not to be pushed).
pub const DOCKER_LAYER_FOREIGN_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// Whether a media type names a single-image manifest (OCI or Docker).
pub fn is_manifest(media_type: &str) -> bool {
    matches!(media_type, OCI_MANIFEST | DOCKER_MANIFEST)
}

/// Whether a media type names an index or manifest list (OCI or Docker).
pub fn is_index(media_type: &str) -> bool {
    matches!(media_type, OCI_INDEX | DOCKER_MANIFEST_LIST)
}

/// Whether a layer media type is one the spec lets registries not hold (its `urls` say
/// where it is): the OCI non-distributable layers and Docker's foreign layers.
pub fn is_non_distributable(media_type: &str) -> bool {
    media_type == DOCKER_LAYER_FOREIGN_GZIP
        || media_type.starts_with("application/vnd.oci.image.layer.nondistributable.v1.tar")
}

/// How a layer blob is compressed, from its media type.
pub fn layer_compression(media_type: &str) -> Option<crate::compression::Compression> {
    use crate::compression::Compression;
    match media_type {
        OCI_LAYER | DOCKER_LAYER | "application/vnd.oci.image.layer.nondistributable.v1.tar" => {
            Some(Compression::None)
        }
        OCI_LAYER_GZIP
        | DOCKER_LAYER_GZIP
        | DOCKER_LAYER_FOREIGN_GZIP
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip" => Some(Compression::Gzip),
        OCI_LAYER_ZSTD | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => {
            Some(Compression::Zstd)
        }
        _ => None,
    }
}
