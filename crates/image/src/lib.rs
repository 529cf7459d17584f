//! kiln's image layer: OCI model, digests, the content store, layer tar/diff and the
//! registry client. Empty until the store lands (issue 3); the workspace and dependency
//! direction (cli → builder/registry/runtime → image) are fixed now.
