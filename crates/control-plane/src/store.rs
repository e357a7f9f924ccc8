//! The reference server's durable state: one SQLite file (WAL, `synchronous=FULL`), so a
//! restarted server forgets nothing it acknowledged. All rules of the API live here: who
//! sees which job, leases, forward-only status.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use crate::api::{
    Heartbeat, JobRecord, JobState, JobStatus, Lease, StatusEvent, StatusReport, rfc3339,
};

/// Why a store operation was refused; each maps to one HTTP answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such job for this agent (404).
    #[error("no job `{0}` for this agent")]
    NotFound(String),
    /// Another claimant's lease is live (409 `leased`).
    #[error("job `{job}` is leased by another claimant until {until}")]
    Leased {
        /// The job.
        job: String,
        /// When the lease lapses.
        until: String,
    },
    /// The job is past claiming (409 `not-pending`).
    #[error("job `{job}` is {state}, past claiming")]
    NotPending {
        /// The job.
        job: String,
        /// Its state.
        state: &'static str,
    },
    /// A job with this id exists (409 `conflict`).
    #[error("a job `{0}` already exists")]
    Exists(String),
    /// The job reached a final state; nothing more is taken for it (409 `final`).
    #[error("job `{job}` is {state}: a finished job takes no more reports, logs or uploads")]
    Final {
        /// The job.
        job: String,
        /// Its final state.
        state: &'static str,
    },
    /// Nobody claimed the job, so nothing can run it yet (409 `not-claimed`).
    #[error("job `{0}` has not been claimed; claim it before reporting or uploading")]
    NotClaimed(String),
    /// Another claimant holds the job's lease (409 `leased`).
    #[error("job `{0}` is leased to another claimant; only the lease holder may report or upload")]
    NotLeaseHolder(String),
    /// The request is malformed (400 `invalid`).
    #[error("{0}")]
    Invalid(String),
    /// SQLite failed (500).
    #[error("database: {0}")]
    Database(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        Self::Database(error.to_string())
    }
}

/// The store; cheap to clone, safe to share.
#[derive(Clone)]
pub struct Store {
    connection: Arc<Mutex<Connection>>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    agent_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    claimant TEXT,
    lease_until INTEGER,
    workflow TEXT,
    message TEXT,
    claims INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL,
    lapses INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_by_agent_state ON jobs (agent_id, state, seq);
CREATE TABLE IF NOT EXISTS events (
    job_id TEXT NOT NULL,
    state TEXT NOT NULL,
    workflow TEXT,
    message TEXT,
    at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_job ON events (job_id);
CREATE TABLE IF NOT EXISTS logs (
    job_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    body TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (job_id, run_id)
);
CREATE TABLE IF NOT EXISTS heartbeats (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_id TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS heartbeats_by_agent ON heartbeats (agent_id, seq);
";

fn millis(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn time_of(millis: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(millis).unwrap_or(0))
}

fn state_of(name: &str) -> Result<JobState, StoreError> {
    JobState::parse(name).ok_or_else(|| StoreError::Database(format!("unknown state `{name}`")))
}

impl Store {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let connection = Connection::open(path)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.busy_timeout(Duration::from_secs(5))?;
        connection.execute_batch(SCHEMA)?;
        // Databases made before `lapses` existed get the column (0: no lapse counted yet).
        let has_lapses = connection
            .prepare("SELECT 1 FROM pragma_table_info('jobs') WHERE name = 'lapses'")?
            .exists([])?;
        if !has_lapses {
            connection
                .execute_batch("ALTER TABLE jobs ADD COLUMN lapses INTEGER NOT NULL DEFAULT 0")?;
        }
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    /// Runs `work` on the connection on the blocking pool, in one transaction.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let connection = Arc::clone(&self.connection);
        tokio::task::spawn_blocking(move || {
            let mut connection = connection
                .lock()
                .map_err(|_| StoreError::Database("a previous operation panicked".to_owned()))?;
            let transaction = connection.transaction()?;
            let value = work(&transaction)?;
            transaction.commit()?;
            Ok(value)
        })
        .await
        .map_err(|e| StoreError::Database(e.to_string()))?
    }
}

fn event(
    tx: &rusqlite::Transaction<'_>,
    job: &str,
    state: JobState,
    workflow: Option<&str>,
    message: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO events (job_id, state, workflow, message, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![job, state.as_str(), workflow, message, now],
    )?;
    Ok(())
}

/// The status columns of a `jobs` row, as stored.
struct StatusRow {
    id: String,
    run_id: String,
    state: String,
    workflow: Option<String>,
    message: Option<String>,
    updated_at: i64,
}

impl StatusRow {
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            run_id: row.get(1)?,
            state: row.get(2)?,
            workflow: row.get(3)?,
            message: row.get(4)?,
            updated_at: row.get(5)?,
        })
    }

    fn status(self) -> Result<JobStatus, StoreError> {
        Ok(JobStatus {
            state: state_of(&self.state)?,
            job_id: self.id,
            run_id: self.run_id,
            workflow: self.workflow,
            message: self.message,
            updated_at: rfc3339(time_of(self.updated_at)),
        })
    }
}

fn job_status(
    tx: &rusqlite::Transaction<'_>,
    agent: &str,
    job: &str,
) -> Result<JobStatus, StoreError> {
    tx.query_row(
        "SELECT id, run_id, state, workflow, message, updated_at FROM jobs WHERE id = ?1 AND agent_id = ?2",
        params![job, agent],
        StatusRow::read,
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound(job.to_owned()))?
    .status()
}

/// Queues `job` for `agent`. The job needs string `id` and `runId` that are path segments.
pub fn enqueue(
    tx: &rusqlite::Transaction<'_>,
    agent: &str,
    job: &Value,
    now: SystemTime,
) -> Result<(), StoreError> {
    let segment = |field: &str| -> Result<String, StoreError> {
        match job.get(field).and_then(Value::as_str) {
            Some(v) if outpost_core::ids::is_path_segment(v) => Ok(v.to_owned()),
            _ => Err(StoreError::Invalid(format!(
                "a queued job needs `{field}`: letters, digits, `.`, `_`, `-`, at most 128"
            ))),
        }
    };
    let id = segment("id")?;
    let run_id = segment("runId")?;
    let now = millis(now);
    let inserted = tx.execute(
        "INSERT INTO jobs (id, agent_id, run_id, body, state, updated_at) VALUES (?1, ?2, ?3, ?4, 'pending', ?5) ON CONFLICT (id) DO NOTHING",
        params![id, agent, run_id, job.to_string(), now],
    )?;
    if inserted == 0 {
        return Err(StoreError::Exists(id));
    }
    event(tx, &id, JobState::Pending, None, None, now)
}

/// Up to `limit` jobs of `agent` that may be claimed: pending, or claimed or running with a
/// lapsed lease (a `running` job keeps its runner's lease, so a runner that died leaves a
/// lapsed lease and the job is offered again).
pub fn pending(
    tx: &rusqlite::Transaction<'_>,
    agent: &str,
    limit: u32,
    now: SystemTime,
) -> Result<Vec<Value>, StoreError> {
    fail_abandoned(tx, agent, now)?;
    let mut statement = tx.prepare_cached(
        "SELECT body FROM jobs WHERE agent_id = ?1 AND (state = 'pending' OR (state IN ('claimed', 'running') AND lease_until IS NOT NULL AND lease_until <= ?2)) ORDER BY seq LIMIT ?3",
    )?;
    let rows = statement.query_map(params![agent, millis(now), limit], |row| {
        row.get::<_, String>(0)
    })?;
    let mut jobs = Vec::new();
    for body in rows {
        jobs.push(serde_json::from_str(&body?).map_err(|e| StoreError::Database(e.to_string()))?);
    }
    Ok(jobs)
}

/// Fails the running jobs of `agent` whose runner's lease lapsed once more after
/// [`MAX_RUNNING_LEASE_LAPSES`] take-overs: a job whose runners keep dying (out of memory,
/// killed) is run a bounded number of times, then failed with the reason, not offered
/// forever.
///
/// [`MAX_RUNNING_LEASE_LAPSES`]: crate::limits::MAX_RUNNING_LEASE_LAPSES
fn fail_abandoned(
    tx: &rusqlite::Transaction<'_>,
    agent: &str,
    now: SystemTime,
) -> Result<(), StoreError> {
    let now = millis(now);
    let abandoned: Vec<(String, Option<String>, u32)> = {
        let mut statement = tx.prepare_cached(
            "SELECT id, claimant, lapses FROM jobs WHERE agent_id = ?1 AND state = 'running' AND lease_until IS NOT NULL AND lease_until <= ?2 AND lapses >= ?3",
        )?;
        let rows = statement.query_map(
            params![agent, now, crate::limits::MAX_RUNNING_LEASE_LAPSES],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )?;
        rows.collect::<Result<_, _>>()?
    };
    for (job, runner, lapses) in abandoned {
        let message = format!(
            "the runner's lease lapsed {} times while the job was running (last runner: {}); failed rather than run again",
            lapses + 1,
            runner.unwrap_or_default()
        );
        tx.execute(
            "UPDATE jobs SET state = 'failed', message = ?1, lease_until = NULL, updated_at = ?2 WHERE id = ?3",
            params![message, now, job],
        )?;
        event(tx, &job, JobState::Failed, None, Some(&message), now)?;
    }
    Ok(())
}

/// What reports, claims and uploads are checked against.
struct JobRow {
    state: JobState,
    run_id: String,
    claimant: Option<String>,
    lease_until: Option<i64>,
    lapses: u32,
}

fn job_row(
    tx: &rusqlite::Transaction<'_>,
    agent: &str,
    job: &str,
) -> Result<Option<JobRow>, StoreError> {
    /// state, run id, claimant, lease end, lapses.
    type Raw = (String, String, Option<String>, Option<i64>, u32);
    let row: Option<Raw> = tx
        .query_row(
            "SELECT state, run_id, claimant, lease_until, lapses FROM jobs WHERE id = ?1 AND agent_id = ?2",
            params![job, agent],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?)),
        )
        .optional()?;
    row.map(|(state, run_id, claimant, lease_until, lapses)| {
        Ok(JobRow {
            state: state_of(&state)?,
            run_id,
            claimant,
            lease_until,
            lapses,
        })
    })
    .transpose()
}

/// Leases `job` to `claimant`: granted when pending, when the lease lapsed, or again to the
/// claimant already holding it (which extends it). A `running` job can be leased again only
/// once its runner's lease lapsed; after [`MAX_RUNNING_LEASE_LAPSES`] such lapses the job is
/// failed instead of offered again.
///
/// [`MAX_RUNNING_LEASE_LAPSES`]: crate::limits::MAX_RUNNING_LEASE_LAPSES
pub fn claim(
    tx: &rusqlite::Transaction<'_>,
    agent: &str,
    job: &str,
    claimant: &str,
    lease: Duration,
    now: SystemTime,
) -> Result<Lease, StoreError> {
    let row = job_row(tx, agent, job)?.ok_or_else(|| StoreError::NotFound(job.to_owned()))?;
    let now_ms = millis(now);
    let expires = millis(now + lease);
    let granted = Lease {
        job_id: job.to_owned(),
        claimant: claimant.to_owned(),
        expires_at: rfc3339(time_of(expires)),
    };
    let live = row.lease_until.is_some_and(|u| u > now_ms);
    let same = row.claimant.as_deref() == Some(claimant);
    match row.state {
        JobState::Pending => {}
        JobState::Claimed | JobState::Running if live && !same => {
            return Err(StoreError::Leased {
                job: job.to_owned(),
                until: rfc3339(time_of(row.lease_until.unwrap_or(0))),
            });
        }
        // The holder renews (a local runner does while its job runs; a runner whose lease
        // lapsed with nobody else taking the job over is still its runner).
        JobState::Claimed if live && same => {
            tx.execute(
                "UPDATE jobs SET lease_until = ?1 WHERE id = ?2",
                params![expires, job],
            )?;
            return Ok(granted);
        }
        JobState::Running if same && row.lease_until.is_some() => {
            tx.execute(
                "UPDATE jobs SET lease_until = ?1 WHERE id = ?2",
                params![expires, job],
            )?;
            return Ok(granted);
        }
        JobState::Claimed => {}
        // The runner's lease lapsed: it died (or lost the control plane for a whole
        // lease). Another runner takes the job over, under the same run id, which delivery
        // treats as a no-op or a clean replacement; the state stays `running`, since status
        // never moves back.
        JobState::Running if row.lease_until.is_some() => {
            let previous = row.claimant.unwrap_or_default();
            if row.lapses >= crate::limits::MAX_RUNNING_LEASE_LAPSES {
                // Not offered again: the next listing fails it (see `pending`).
                return Err(StoreError::NotPending {
                    job: job.to_owned(),
                    state: JobState::Running.as_str(),
                });
            }
            tx.execute(
                "UPDATE jobs SET claimant = ?1, lease_until = ?2, claims = claims + 1, lapses = lapses + 1, updated_at = ?3 WHERE id = ?4",
                params![claimant, expires, now_ms, job],
            )?;
            event(
                tx,
                job,
                JobState::Running,
                None,
                Some(&format!(
                    "the lease of runner {previous} lapsed while running; leased to {claimant}"
                )),
                now_ms,
            )?;
            return Ok(granted);
        }
        other => {
            return Err(StoreError::NotPending {
                job: job.to_owned(),
                state: other.as_str(),
            });
        }
    }
    tx.execute(
        "UPDATE jobs SET state = 'claimed', claimant = ?1, lease_until = ?2, claims = claims + 1, updated_at = ?3 WHERE id = ?4",
        params![claimant, expires, now_ms, job],
    )?;
    event(
        tx,
        job,
        JobState::Claimed,
        None,
        Some(&format!("leased to {claimant}")),
        now_ms,
    )?;
    Ok(granted)
}

/// Who reports or uploads: the claimant holding the lease (`Some`), or one of a run's own
/// steps (`None`: an exit handler or an upload step, which act for a Workflow that only a
/// lease holder could have submitted and do not know who that was).
fn check_open(row: &JobRow, job: &str, claimant: Option<&str>) -> Result<(), StoreError> {
    if row.state.is_final() {
        return Err(StoreError::Final {
            job: job.to_owned(),
            state: row.state.as_str(),
        });
    }
    if row.state == JobState::Pending {
        return Err(StoreError::NotClaimed(job.to_owned()));
    }
    match claimant {
        Some(claimant) if row.claimant.as_deref() != Some(claimant) => {
            Err(StoreError::NotLeaseHolder(job.to_owned()))
        }
        _ => Ok(()),
    }
}

/// Applies a status report if it moves the job forward; answers the status afterwards.
///
/// `claimant` is the reporter's `Outpost-Claimant`: `submitted`, `rejected` and `running`
/// are the lease holder's decisions and need it; `succeeded` and `failed` may also come
/// from the run's exit handler, without one. After a final state only the same final
/// report is answered (a retry whose answer was lost); anything else is refused.
pub fn report(
    tx: &rusqlite::Transaction<'_>,
    agent: &str,
    job: &str,
    report: &StatusReport,
    claimant: Option<&str>,
    now: SystemTime,
) -> Result<JobStatus, StoreError> {
    let row = job_row(tx, agent, job)?.ok_or_else(|| StoreError::NotFound(job.to_owned()))?;
    if row.run_id != report.run_id {
        return Err(StoreError::Invalid(format!(
            "job `{job}` has run `{}`, not `{}`",
            row.run_id, report.run_id
        )));
    }
    if matches!(report.state, JobState::Pending | JobState::Claimed) {
        return Err(StoreError::Invalid(format!(
            "`{}` is the server's own state; agents report submitted, running, succeeded, failed or rejected",
            report.state.as_str()
        )));
    }
    if row.state.is_final() && report.state == row.state {
        return job_status(tx, agent, job);
    }
    check_open(&row, job, claimant)?;
    if claimant.is_none()
        && matches!(
            report.state,
            JobState::Submitted | JobState::Rejected | JobState::Running
        )
    {
        return Err(StoreError::Invalid(format!(
            "reporting `{}` needs the Outpost-Claimant header: only the claimant holding the lease may",
            report.state.as_str()
        )));
    }
    if report.state.rank() <= row.state.rank() {
        return job_status(tx, agent, job);
    }
    let now = millis(now);
    // A running job keeps its runner's lease: if the runner dies the lease lapses and the
    // job is offered again. Every other state ends the lease (a submitted job belongs to
    // its Workflow, a final one to nobody).
    tx.execute(
        "UPDATE jobs SET state = ?1, workflow = COALESCE(?2, workflow), message = COALESCE(?3, message), updated_at = ?4, lease_until = CASE WHEN ?1 = 'running' THEN lease_until ELSE NULL END WHERE id = ?5",
        params![report.state.as_str(), report.workflow, report.message, now, job],
    )?;
    event(
        tx,
        job,
        report.state,
        report.workflow.as_deref(),
        report.message.as_deref(),
        now,
    )?;
    job_status(tx, agent, job)
}

/// Checks that `job`'s run `run` belongs to `agent` and still takes uploads from
/// `claimant` (see [`report`]); answers the job as queued.
fn open_run(
    tx: &rusqlite::Transaction<'_>,
    agent: &str,
    job: &str,
    run: &str,
    claimant: Option<&str>,
) -> Result<Value, StoreError> {
    let not_found = || StoreError::NotFound(format!("{job}/{run}"));
    let row = job_row(tx, agent, job)?.ok_or_else(not_found)?;
    if row.run_id != run {
        return Err(not_found());
    }
    check_open(&row, job, claimant)?;
    let body: String = tx.query_row(
        "SELECT body FROM jobs WHERE id = ?1 AND agent_id = ?2",
        params![job, agent],
        |row| row.get(0),
    )?;
    serde_json::from_str(&body).map_err(|e| StoreError::Database(e.to_string()))
}

/// The connection a job names, for signing its upload URLs; checks job and run belong to
/// `agent` and the run still takes uploads from `claimant`.
pub fn run_connection(
    tx: &rusqlite::Transaction<'_>,
    agent: &str,
    job: &str,
    run: &str,
    claimant: Option<&str>,
) -> Result<String, StoreError> {
    open_run(tx, agent, job, run, claimant)?
        .get("connection")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| StoreError::Invalid(format!("job `{job}` names no connection")))
}

/// Stores a run's logs, replacing earlier ones, while the run takes uploads from
/// `claimant`.
pub fn put_logs(
    tx: &rusqlite::Transaction<'_>,
    agent: &str,
    job: &str,
    run: &str,
    claimant: Option<&str>,
    logs: &str,
    now: SystemTime,
) -> Result<(), StoreError> {
    open_run(tx, agent, job, run, claimant)?;
    tx.execute(
        "INSERT INTO logs (job_id, run_id, body, received_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (job_id, run_id) DO UPDATE SET body = excluded.body, received_at = excluded.received_at",
        params![job, run, logs, millis(now)],
    )?;
    Ok(())
}

/// A run's logs.
pub fn logs(tx: &rusqlite::Transaction<'_>, job: &str, run: &str) -> Result<String, StoreError> {
    tx.query_row(
        "SELECT body FROM logs WHERE job_id = ?1 AND run_id = ?2",
        params![job, run],
        |row| row.get(0),
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound(format!("logs of {job}/{run}")))
}

/// Records a heartbeat of `agent`, keeping only its newest `keep` heartbeats.
pub fn heartbeat(
    tx: &rusqlite::Transaction<'_>,
    agent: &str,
    heartbeat: &Heartbeat,
    keep: usize,
) -> Result<(), StoreError> {
    let body = serde_json::to_string(heartbeat).map_err(|e| StoreError::Database(e.to_string()))?;
    tx.execute(
        "INSERT INTO heartbeats (agent_id, body) VALUES (?1, ?2)",
        params![agent, body],
    )?;
    tx.execute(
        "DELETE FROM heartbeats WHERE agent_id = ?1 AND seq NOT IN (SELECT seq FROM heartbeats WHERE agent_id = ?1 ORDER BY seq DESC LIMIT ?2)",
        params![agent, i64::try_from(keep).unwrap_or(i64::MAX)],
    )?;
    Ok(())
}

/// Every heartbeat, oldest first.
pub fn heartbeats(tx: &rusqlite::Transaction<'_>) -> Result<Vec<Heartbeat>, StoreError> {
    let mut statement = tx.prepare_cached("SELECT body FROM heartbeats ORDER BY seq")?;
    let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
    let mut out = Vec::new();
    for body in rows {
        out.push(serde_json::from_str(&body?).map_err(|e| StoreError::Database(e.to_string()))?);
    }
    Ok(out)
}

/// Every job with its status and history, in queue order.
pub fn records(tx: &rusqlite::Transaction<'_>) -> Result<Vec<JobRecord>, StoreError> {
    let mut statement = tx.prepare_cached(
        "SELECT id, run_id, state, workflow, message, updated_at, agent_id, body, claims FROM jobs ORDER BY seq",
    )?;
    let rows = statement.query_map([], |row| {
        Ok((
            StatusRow::read(row)?,
            row.get::<_, String>(6)?,
            row.get::<_, String>(7)?,
            row.get::<_, u32>(8)?,
        ))
    })?;
    let mut history_of = tx.prepare_cached(
        "SELECT state, workflow, message, at FROM events WHERE job_id = ?1 ORDER BY rowid",
    )?;
    let mut out = Vec::new();
    for row in rows {
        let (status, agent_id, body, claims) = row?;
        let history = history_of
            .query_map(params![status.id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })?
            .map(|r| {
                let (state, workflow, message, at) = r?;
                Ok(StatusEvent {
                    state: state_of(&state)?,
                    workflow,
                    message,
                    at: rfc3339(time_of(at)),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        out.push(JobRecord {
            agent_id,
            job: serde_json::from_str(&body).map_err(|e| StoreError::Database(e.to_string()))?,
            status: status.status()?,
            history,
            claims,
        });
    }
    Ok(out)
}
