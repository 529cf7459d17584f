//! Settings of glibc's allocator for kiln's long-running processes.

/// Caps glibc's malloc arenas at one per core. glibc gives each thread that allocates an
/// arena of its own, up to eight per core, and memory freed into an arena stays there: a
/// server's worker and blocking threads each keep one. Call it before the process starts
/// its threads.
pub fn one_arena_per_core() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cores = i32::try_from(cores).unwrap_or(i32::MAX);
    // SAFETY: mallopt(3) changes a setting of glibc's allocator; no memory is touched.
    unsafe {
        nix::libc::mallopt(nix::libc::M_ARENA_MAX, cores);
    }
}
