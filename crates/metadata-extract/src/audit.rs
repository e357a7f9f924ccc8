//! The query audit: every statement an extractor sends to its source, with how often, how
//! long and how many rows, written into the manifest (`queries`) so a customer's security
//! team can see exactly what the agent ran against their database. Each source records at
//! its one choke point (its reader or client), so nothing it sends goes unlisted.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use outpost_core::output::AuditedStatement;

/// The statements of one run, shared by the source's readers (cheap to clone).
#[derive(Clone, Debug, Default)]
pub struct Audit(Arc<Mutex<Vec<Entry>>>);

#[derive(Debug)]
struct Entry {
    statement: String,
    count: u64,
    total: Duration,
    rows: u64,
}

impl Audit {
    /// Records one sending of `statement`, which returned `rows` in `elapsed`.
    pub fn record(&self, statement: &str, rows: u64, elapsed: Duration) {
        let mut entries = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // Few distinct statements, each sent many times: a scan from the newest is short.
        match entries.iter_mut().rev().find(|e| e.statement == statement) {
            Some(entry) => {
                entry.count += 1;
                entry.total += elapsed;
                entry.rows += rows;
            }
            None => entries.push(Entry {
                statement: statement.to_owned(),
                count: 1,
                total: elapsed,
                rows,
            }),
        }
    }

    /// Starts timing one sending of `statement`; [`Sent::done`] records it.
    pub fn start<'a>(&'a self, statement: &'a str) -> Sent<'a> {
        Sent {
            audit: self,
            statement,
            started: Instant::now(),
            rows: 0,
        }
    }

    /// The statements, in the order first sent, for the manifest.
    pub fn statements(&self) -> Vec<AuditedStatement> {
        let entries = self.0.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .iter()
            .map(|e| AuditedStatement {
                statement: e.statement.clone(),
                count: e.count,
                total_ms: u64::try_from(e.total.as_millis()).unwrap_or(u64::MAX),
                rows: e.rows,
            })
            .collect()
    }
}

/// One statement being sent: count its rows, then [`Sent::done`]. Dropped without `done`
/// (an error, a cancelled future), it is still recorded: what was sent is listed.
pub struct Sent<'a> {
    audit: &'a Audit,
    statement: &'a str,
    started: Instant,
    rows: u64,
}

impl Sent<'_> {
    /// One more row read.
    pub fn row(&mut self) {
        self.rows += 1;
    }

    /// `n` more rows read.
    pub fn rows(&mut self, n: u64) {
        self.rows += n;
    }

    /// Records it now.
    pub fn done(self) {}
}

impl Drop for Sent<'_> {
    fn drop(&mut self) {
        self.audit
            .record(self.statement, self.rows, self.started.elapsed());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_listed_once_in_first_sent_order_with_their_totals() {
        let audit = Audit::default();
        for rows in [2, 3] {
            let mut sent = audit.start("SELECT 1");
            sent.rows(rows);
            sent.done();
        }
        {
            // Dropped on an error path: still listed.
            let mut sent = audit.start("SELECT 2");
            sent.row();
        }
        audit.record("SELECT 1", 1, Duration::from_millis(5));
        let listed = audit.statements();
        assert_eq!(listed.len(), 2);
        assert_eq!(
            (
                listed[0].statement.as_str(),
                listed[0].count,
                listed[0].rows
            ),
            ("SELECT 1", 3, 6)
        );
        assert!(listed[0].total_ms >= 5);
        assert_eq!(
            (
                listed[1].statement.as_str(),
                listed[1].count,
                listed[1].rows
            ),
            ("SELECT 2", 1, 1)
        );
    }
}
