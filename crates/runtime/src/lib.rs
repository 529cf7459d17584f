//! kiln's runtime: namespaces, rootfs, cgroups, network. Empty until the RUN sandbox lands
//! (issue 4).
