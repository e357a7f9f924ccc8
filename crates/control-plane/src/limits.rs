//! Every bound the reference server puts on a network peer, with the reason for each number.
//! The same numbers are documented in `openapi.yaml` and the crate's README section.

use std::time::Duration;

/// What the reference server allows a client.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Longest wait for a request's headers, counted from when the server starts waiting
    /// (also how long an idle keep-alive connection stays open). Default 10 s: headers are a
    /// few hundred bytes, so a client that needs longer is trickling them.
    pub header_read_timeout: Duration,
    /// Longest time to receive a request's body. Default 20 s: the largest body (8 MiB of
    /// logs) arrives in 20 s at 420 KB/s, and the agent's own client gives a whole call
    /// 30 s.
    pub body_read_timeout: Duration,
    /// Longest time from a request's headers to its answer, body reading included. Default
    /// 30 s, the agent client's own deadline for one answer: an answer later than that has
    /// no one waiting for it.
    pub request_timeout: Duration,
    /// Connections served at once. Default 256: an agent makes at most a few calls at once
    /// (8 jobs per tick), so this leaves room for many agents while bounding the memory and
    /// file descriptors a flood of connections can take. A connection beyond it is answered
    /// `503` (`busy`, `Retry-After: 1`) and closed within a second, never queued: a queue
    /// would let slow clients delay everyone else, while a refusal is retried by the agent's
    /// client.
    pub max_connections: usize,
    /// Heartbeats kept per agent; older ones are deleted as new ones arrive. Default 2,016:
    /// a week of heartbeats at one every five minutes.
    pub heartbeats_kept: usize,
    /// How far a heartbeat's `sentAt` may be ahead of the server's clock. Default 5 minutes:
    /// clocks synchronised by NTP are within a second; more means a wrong clock.
    pub max_clock_ahead: Duration,
    /// How far a heartbeat's `sentAt` may be behind the server's clock. Default 10 minutes:
    /// the 5 minutes of skew allowed ahead, plus the client's retries of one heartbeat (four
    /// attempts of up to 30 s with backoff, about 2 minutes) and some margin. An older
    /// heartbeat says nothing current about the agent.
    pub max_clock_behind: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(20),
            request_timeout: Duration::from_secs(30),
            max_connections: 256,
            heartbeats_kept: 2016,
            max_clock_ahead: Duration::from_secs(5 * 60),
            max_clock_behind: Duration::from_secs(10 * 60),
        }
    }
}

/// Largest request body of each operation, in bytes. Every route has one; operations
/// without a request body take none.
pub mod body {
    /// `claimJob`: a claimant (at most 253 characters) and a number.
    pub const CLAIM: usize = 4 << 10;
    /// `reportStatus`: a message of at most 16,384 characters, JSON-escaped (up to six
    /// bytes each), and a Workflow name.
    pub const STATUS: usize = 128 << 10;
    /// `requestUploadUrls`: a run's paths; a run has a few hundred files at most.
    pub const UPLOAD_URLS: usize = 8 << 20;
    /// `uploadRunLogs`: 8 MiB of logs (the agent keeps 1 MiB per container).
    pub const LOGS: usize = 8 << 20;
    /// `sendHeartbeat`: a few short fields.
    pub const HEARTBEAT: usize = 16 << 10;
    /// `enqueueJob`: a job (agents admit at most 64 KiB) with its envelope.
    pub const ENQUEUE: usize = 1 << 20;
    /// Operations without a request body (every GET).
    pub const NONE: usize = 0;
}

/// The body cap of the route `template` (axum's matched path) for `method`.
pub fn body_cap(method: &axum::http::Method, template: &str) -> usize {
    use axum::http::Method;
    match (method, template) {
        (&Method::POST, "/v1/jobs/{job}/claim") => body::CLAIM,
        (&Method::POST, "/v1/jobs/{job}/status") => body::STATUS,
        (&Method::POST, "/v1/jobs/{job}/runs/{run}/upload-urls") => body::UPLOAD_URLS,
        (&Method::PUT, "/v1/jobs/{job}/runs/{run}/logs") => body::LOGS,
        (&Method::POST, "/v1/heartbeat") => body::HEARTBEAT,
        (&Method::POST, "/admin/v1/jobs") => body::ENQUEUE,
        _ => body::NONE,
    }
}

/// How many times a `running` job's lease may lapse and pass to another runner before the
/// job is failed instead: a job whose runner keeps dying (out of memory, killed) runs at
/// most four times, not forever.
pub const MAX_RUNNING_LEASE_LAPSES: u32 = 3;
