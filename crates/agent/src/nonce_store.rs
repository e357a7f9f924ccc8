//! Local mode's record of the nonces of the signed jobs it ran, so a signed job is run once
//! (finding M1 of security issue 13: a signature alone can be replayed). The local executor
//! ([`crate::local`]) keeps it; the cluster's record is on its Workflows ([`crate::tick`]).
//!
//! One JSON file in the state folder (`--state-dir`), `seen-nonces.json`: nonce → job id,
//! run id, `notAfter`, and whether the job finished. A nonce is recorded before its job
//! runs and marked finished once the job's final status was reported. Then:
//! - a nonce recorded for another job or run is a replay, refused;
//! - a nonce whose job finished is a replay, refused;
//! - a nonce whose job started and did not finish (the runner died, the lease lapsed, the
//!   control plane hands the job out again) runs again under the same run id, which
//!   delivery treats as a no-op or a clean replacement.
//!
//! An entry is kept until its `notAfter` plus the clock skew has passed: after that the job
//! is refused as expired anyway. Writes go to a temporary file that replaces the record
//! (synced first), so a crash leaves the old record or the new one; a lock file keeps two
//! runners sharing a state folder from losing each other's entries.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use orchestrator::signing::{CLOCK_SKEW, JobNonce, parse_utc};
use serde::{Deserialize, Serialize};

const RECORD: &str = "seen-nonces.json";
const LOCK: &str = "seen-nonces.lock";

/// What is known of one nonce.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Entry {
    job_id: String,
    run_id: String,
    not_after: String,
    finished: bool,
}

/// The nonce record in a state folder.
#[derive(Clone, Debug)]
pub struct NonceStore {
    dir: PathBuf,
}

impl NonceStore {
    /// The record in `dir`, created (mode 0700) when missing; fails when it cannot be read
    /// or written, so a runner that could not remember nonces never starts.
    pub fn open(dir: &Path) -> Result<Self, String> {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("state folder {}: {e}", dir.display()))?;
        let store = Self {
            dir: dir.to_owned(),
        };
        store.update(SystemTime::now(), |_| ())?;
        Ok(store)
    }

    /// Records that the job `job_id`/`run_id` carrying `nonce` starts now; answers why it
    /// is a replay instead, recording nothing.
    pub fn begin(
        &self,
        nonce: &JobNonce,
        job_id: &str,
        run_id: &str,
        now: SystemTime,
    ) -> Result<Option<String>, String> {
        self.update(now, |entries| match entries.get(&nonce.nonce) {
            Some(entry) if entry.job_id != job_id || entry.run_id != run_id => Some(format!(
                "replayed nonce: nonce `{}` was already used by job `{}` run `{}`; a nonce is accepted once",
                nonce.nonce, entry.job_id, entry.run_id
            )),
            Some(entry) if entry.finished => Some(format!(
                "replayed nonce: job `{}` run `{}` with nonce `{}` already ran on this agent; a nonce is accepted once",
                entry.job_id, entry.run_id, nonce.nonce
            )),
            // Started and never finished: the same job again after a crash.
            Some(_) => None,
            None => {
                entries.insert(
                    nonce.nonce.clone(),
                    Entry {
                        job_id: job_id.to_owned(),
                        run_id: run_id.to_owned(),
                        not_after: nonce.not_after_text(),
                        finished: false,
                    },
                );
                None
            }
        })
    }

    /// Marks `nonce`'s job finished: from now on the nonce is refused.
    pub fn finish(&self, nonce: &JobNonce, now: SystemTime) -> Result<(), String> {
        self.update(now, |entries| {
            if let Some(entry) = entries.get_mut(&nonce.nonce) {
                entry.finished = true;
            }
        })
    }

    /// Under the lock: reads the record, applies `change`, drops entries past their
    /// `notAfter` plus the clock skew, and writes the record back.
    fn update<T>(
        &self,
        now: SystemTime,
        change: impl FnOnce(&mut BTreeMap<String, Entry>) -> T,
    ) -> Result<T, String> {
        let lock_path = self.dir.join(LOCK);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| format!("{}: {e}", lock_path.display()))?;
        lock.lock()
            .map_err(|e| format!("locking {}: {e}", lock_path.display()))?;
        let path = self.dir.join(RECORD);
        let mut entries: BTreeMap<String, Entry> = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| format!("{}: not a nonce record: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let answer = change(&mut entries);
        entries.retain(|_, entry| {
            parse_utc(&entry.not_after).is_none_or(|not_after| now <= not_after + CLOCK_SKEW)
        });
        let temporary = self.dir.join(format!("{RECORD}.tmp"));
        let written = File::create(&temporary).and_then(|mut file| {
            file.write_all(&serde_json::to_vec_pretty(&entries).unwrap_or_default())?;
            file.sync_all()
        });
        written
            .and_then(|()| std::fs::rename(&temporary, &path))
            .and_then(|()| File::open(&self.dir)?.sync_all())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        drop(lock);
        Ok(answer)
    }
}

/// The store signed jobs need (they run once: their nonces must outlive this process), in
/// `dir` or else the default folder; none when jobs are not signed.
pub fn for_signed_jobs(signed: bool, dir: Option<PathBuf>) -> Result<Option<NonceStore>, String> {
    if !signed {
        return Ok(None);
    }
    let dir = dir
        .or_else(default_state_dir)
        .ok_or("--job-signing-key needs --state-dir (no XDG_STATE_HOME or HOME to default to)")?;
    NonceStore::open(&dir).map(Some)
}

/// The default state folder: `$XDG_STATE_HOME/outpost`, else `~/.local/state/outpost`.
pub fn default_state_dir() -> Option<PathBuf> {
    let nonempty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    nonempty("XDG_STATE_HOME")
        .map(|dir| PathBuf::from(dir).join("outpost"))
        .or_else(|| nonempty("HOME").map(|home| PathBuf::from(home).join(".local/state/outpost")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn nonce(text: &str, valid_for: Duration) -> JobNonce {
        JobNonce {
            nonce: text.to_owned(),
            not_after: SystemTime::now() + valid_for,
        }
    }

    #[test]
    fn a_nonce_is_accepted_once_and_survives_a_restart() {
        let dir = tempfile::tempdir().expect("dir");
        let now = SystemTime::now();
        let store = NonceStore::open(dir.path()).expect("store");
        let n = nonce("AAAAAAAAAAAAAAAAAAAAAA", Duration::from_secs(3600));
        assert_eq!(store.begin(&n, "j1", "r1", now), Ok(None));
        // The runner died before finishing: the same job may run again.
        let reopened = NonceStore::open(dir.path()).expect("store");
        assert_eq!(reopened.begin(&n, "j1", "r1", now), Ok(None));
        // Another job with that nonce is a replay, whether or not the first finished.
        let other = reopened.begin(&n, "j2", "r1", now).expect("read");
        assert!(other.is_some_and(|r| r.contains("already used by job `j1`")));
        reopened.finish(&n, now).expect("finish");
        let again = NonceStore::open(dir.path())
            .expect("store")
            .begin(&n, "j1", "r1", now)
            .expect("read");
        assert!(
            again.is_some_and(|r| r.contains("already ran")),
            "finished jobs do not run again"
        );
    }

    #[test]
    fn entries_are_dropped_only_once_their_job_has_expired() {
        let dir = tempfile::tempdir().expect("dir");
        let store = NonceStore::open(dir.path()).expect("store");
        // Whole seconds: `notAfter` is recorded to the second.
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let short = JobNonce {
            nonce: "BBBBBBBBBBBBBBBBBBBBBB".to_owned(),
            not_after: now + Duration::from_secs(60),
        };
        store.begin(&short, "j1", "r1", now).expect("begin");
        store.finish(&short, now).expect("finish");
        let record = || std::fs::read_to_string(dir.path().join(RECORD)).expect("record");
        // Still within notAfter plus the skew: kept.
        store
            .update(now + Duration::from_secs(60) + CLOCK_SKEW, |_| ())
            .expect("update");
        assert!(record().contains("BBBBBBBBBBBBBBBBBBBBBB"));
        // Past it: dropped (the job would be refused as expired by then).
        store
            .update(now + Duration::from_secs(61) + CLOCK_SKEW, |_| ())
            .expect("update");
        assert!(!record().contains("BBBBBBBBBBBBBBBBBBBBBB"), "{}", record());
    }

    #[test]
    fn an_unreadable_record_is_an_error_not_an_empty_one() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join(RECORD), "not json").expect("write");
        let error = NonceStore::open(dir.path()).expect_err("corrupt");
        assert!(error.contains("not a nonce record"), "{error}");
    }
}
