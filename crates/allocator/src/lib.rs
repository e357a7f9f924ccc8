//! The `outpost` binary's allocator, in a crate of its own so that its `unsafe` calls
//! (mimalloc's option setter and `prctl` have no safe bindings) stay out of every other
//! crate, which all `forbid(unsafe_code)`.
//!
//! Linking this crate installs mimalloc as the global allocator; [`tune`] sets the process
//! up for a long extraction and runs first thing in `main`.

/// Rendering and extraction are allocation-heavy (YAML and JSON trees); mimalloc makes the
/// 100-connector render bench ~20% faster than glibc's allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay`. The bindings do not name it (their list follows mimalloc 2), but
/// it keeps this number in mimalloc 2 and 3 (`mi_option_e` in `mimalloc.h`); a test below
/// reads its documented default there.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps the resident size close to what the process holds.
///
/// By default mimalloc asks for transparent huge pages on its arena (2 MiB pages, each
/// resident whole once touched) and returns freed pages to the OS a second later. An
/// extraction's resident size then followed the largest answer it had read, not what it held:
/// on the Snowflake benchmark, 41 MiB at 3,000 tables and 56 MiB at 10,000 for 8 and 11 MiB
/// of live heap. With huge pages off for the process and freed pages returned at once, it is
/// 28 and 31 MiB, with no measured loss of speed (`crates/metadata-extract/benches/`).
///
/// Both are set at run time, after mimalloc has started: its own `allow_thp` and
/// `arena_eager_commit` options are read only at start-up, from the environment.
pub fn tune() {
    #[allow(unsafe_code)]
    // SAFETY: `mi_option_set` stores a process-wide integer option that mimalloc reads at
    // each purge; it is called before the runtime starts any thread.
    unsafe {
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
    }
    #[cfg(target_os = "linux")]
    {
        // Huge pages are refused at fault time for the whole process, the arena mimalloc
        // has already advised included. An older kernel without the flag keeps them.
        #[allow(unsafe_code)]
        // SAFETY: PR_SET_THP_DISABLE takes integer arguments and touches no memory of ours.
        let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn purge_delay() -> std::ffi::c_long {
        // SAFETY: reading a process-wide integer option.
        #[allow(unsafe_code)]
        unsafe {
            libmimalloc_sys::mi_option_get(PURGE_DELAY)
        }
    }

    #[test]
    fn the_number_names_the_purge_delay_and_tune_sets_it_with_huge_pages_off() {
        // Before tuning, the number holds the purge delay's documented default (1000 ms in
        // mimalloc 3): a renumbered mimalloc would show another option's value here.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(purge_delay(), 1000);
        }
        tune();
        assert_eq!(purge_delay(), 0);
        #[cfg(target_os = "linux")]
        {
            let status = std::fs::read_to_string("/proc/self/status").expect("status");
            assert!(
                status
                    .lines()
                    .any(|l| l.split_whitespace().eq(["THP_enabled:", "0"])),
                "huge pages still on: {status}"
            );
        }
    }
}
