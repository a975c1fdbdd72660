//! Keeping a long-lived helper process small: berth's monitor and task
//! supervisor each live as long as their container or task, so what they
//! hold after start-up is paid once per container or task on the host.
//!
//! Three tools, all best effort (a failure only costs memory):
//! - [`limit_arenas`]: one malloc arena for the whole process, so that
//!   short-lived threads leave no arenas of their own behind;
//! - [`release_startup_pages`]: drop the clean file pages start-up faulted in;
//! - [`trim_heap`]: give the heap's free memory back to the kernel.

use std::fs::File;

/// Make glibc's malloc use one arena for every thread. By default each
/// thread that allocates gets an arena of its own (up to 8 per core), kept
/// after the thread ends and never trimmed as a whole. Call it first thing,
/// before any thread exists.
pub fn limit_arenas() {
    // SAFETY: mallopt only sets malloc's tunables; it is called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Return free heap memory to the kernel (every arena, not only the top).
pub fn trim_heap() {
    // SAFETY: malloc_trim takes malloc's own locks; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Drop the pages of the binary and its libraries that start-up faulted in
/// (the kernel maps 64 KiB around each fault), so that only what the pump
/// loop touches comes back: the monitor lives as long as its container.
/// Only pages that are still the file's own are dropped (pagemap says so);
/// relocated, copied-on-write pages would lose their contents and stay.
pub fn release_startup_pages() {
    const PRESENT: u64 = 1 << 63;
    const FILE_OR_SHARED: u64 = 1 << 61;
    let (Ok(maps), Ok(pagemap)) = (
        std::fs::read_to_string("/proc/self/maps"),
        File::open("/proc/self/pagemap"),
    ) else {
        return;
    };
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .unwrap_or(4096) as usize;
    let mut runs = Vec::new();
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        let path = fields.nth(3).unwrap_or("");
        if !(perms == "r-xp" || perms == "r--p") || !path.starts_with('/') {
            continue;
        }
        let Some((start, end)) = range.split_once('-').and_then(|(s, e)| {
            Some((
                usize::from_str_radix(s, 16).ok()?,
                usize::from_str_radix(e, 16).ok()?,
            ))
        }) else {
            continue;
        };
        let pages = (end - start) / page;
        let mut entries = vec![0u8; pages * 8];
        let offset = (start / page * 8) as u64;
        if std::os::unix::fs::FileExt::read_exact_at(&pagemap, &mut entries, offset).is_err() {
            continue;
        }
        let droppable = |i: usize| {
            let bytes: [u8; 8] = entries[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]);
            let entry = u64::from_ne_bytes(bytes);
            entry & PRESENT != 0 && entry & FILE_OR_SHARED != 0
        };
        let mut i = 0;
        while i < pages {
            if !droppable(i) {
                i += 1;
                continue;
            }
            let run_start = i;
            while i < pages && droppable(i) {
                i += 1;
            }
            runs.push((start + run_start * page, (i - run_start) * page));
        }
    }
    // Dropped last, in one short loop: what runs after a drop faults its
    // code back (a whole page-cache folio, up to hundreds of KiB, each).
    drop((maps, pagemap));
    for (addr, len) in runs {
        let Some(addr) = std::ptr::NonNull::new(addr as *mut std::ffi::c_void) else {
            continue;
        };
        // SAFETY: these pages are unmodified file pages of a private
        // mapping: dropping them loses nothing, and a later access
        // faults them back in from the page cache.
        let _ = unsafe {
            nix::sys::mman::madvise(addr, len, nix::sys::mman::MmapAdvise::MADV_DONTNEED)
        };
    }
}
