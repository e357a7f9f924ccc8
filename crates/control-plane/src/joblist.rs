//! `GET /v1/jobs` read as a stream: `{"jobs": [job, job, …]}` is scanned as it arrives,
//! each job parsed on its own, and reading stops as soon as the page is full. Memory stays
//! bounded by one job and the jobs kept, however long the answer: a 300 MB list costs what
//! its first jobs cost, not 300 MB (and twice that parsed).
//!
//! Bounds ([`ListLimits`]): the number of jobs kept (the page size asked for), the size of
//! one job, the bytes of jobs kept, and the bytes read. A job over the size limit is
//! skipped (scanned, never held) and logged; it stays pending on the control plane. Jobs
//! beyond the other limits are left for the next poll. The answer must still be the
//! documented JSON as far as it is read.

use serde_json::Value;

/// How much of a job list is read and kept.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ListLimits {
    /// Jobs kept: the page size asked for.
    pub max_jobs: usize,
    /// Largest job kept, in bytes of JSON.
    pub max_job_bytes: usize,
    /// Bytes of JSON kept over all jobs (the first job is kept whatever its size up to
    /// `max_job_bytes`, so a page is never empty because of this bound).
    pub max_kept_bytes: usize,
    /// Bytes read from the answer, after which reading stops.
    pub max_read_bytes: usize,
}

/// Largest job kept: twice what admission accepts
/// ([`orchestrator::admission::MAX_JOB_BYTES`]), so admission, which reports its reasons to
/// the control plane, sees every job that is merely too large, and only absurd ones are
/// skipped here.
pub(crate) const MAX_JOB_BYTES: usize = 2 * orchestrator::admission::MAX_JOB_BYTES;
/// Bytes of jobs kept per page: parsed JSON takes several times its text, and the
/// orchestrator runs in 64 MiB. Thirty-two jobs of the largest admissible size fit; typical
/// jobs are under 1 KiB, so a page of 100 is far below it.
pub(crate) const MAX_KEPT_BYTES: usize = 2 << 20;
/// Bytes read from one answer: far more than any page of admissible jobs (100 × 64 KiB).
pub(crate) const MAX_READ_BYTES: usize = 16 << 20;

/// What was read.
#[derive(Debug, Default)]
pub(crate) struct JobPage {
    /// The jobs kept, in the answer's order.
    pub jobs: Vec<Value>,
    /// Why reading stopped before the end of the list, when it did.
    pub left: Option<Left>,
    /// Jobs skipped for their size: (position in the list, bytes).
    pub skipped: Vec<(usize, usize)>,
}

/// Why jobs were left for the next poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Left {
    /// The page is full and the list goes on.
    PageFull,
    /// The jobs kept reached [`ListLimits::max_kept_bytes`].
    KeptBytes,
    /// The answer reached [`ListLimits::max_read_bytes`].
    ReadBytes,
}

/// Whether to go on reading.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Feed {
    More,
    Stop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    Key,
    KeyString,
    Colon,
    ArrayOpen,
    BeforeElement { first: bool },
    Element,
    AfterElement,
    AfterArray,
    Done,
}

/// The scanner: fed the answer chunk by chunk.
pub(crate) struct Scanner {
    limits: ListLimits,
    phase: Phase,
    read: usize,
    key: Vec<u8>,
    // The element being scanned.
    depth: usize,
    in_string: bool,
    escaped: bool,
    scalar: bool,
    keep: bool,
    element: Vec<u8>,
    element_len: usize,
    position: usize,
    kept_bytes: usize,
    page: JobPage,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

impl Scanner {
    pub(crate) fn new(limits: ListLimits) -> Self {
        Self {
            limits,
            phase: Phase::Open,
            read: 0,
            key: Vec::new(),
            depth: 0,
            in_string: false,
            escaped: false,
            scalar: false,
            keep: true,
            element: Vec::new(),
            element_len: 0,
            position: 0,
            kept_bytes: 0,
            page: JobPage::default(),
        }
    }

    /// Scans `chunk`; `Stop` once the page is complete or full.
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Result<Feed, String> {
        for &b in chunk {
            if self.read >= self.limits.max_read_bytes {
                self.page.left = Some(Left::ReadBytes);
                return Ok(Feed::Stop);
            }
            self.read += 1;
            if self.byte(b)? == Feed::Stop {
                return Ok(Feed::Stop);
            }
        }
        Ok(Feed::More)
    }

    /// The page, at the end of the answer (or after `Stop`).
    pub(crate) fn finish(self) -> Result<JobPage, String> {
        if self.phase == Phase::Done || self.page.left.is_some() {
            Ok(self.page)
        } else {
            Err("the answer ended before the job list was complete".to_owned())
        }
    }

    fn expect(&self, what: &str, b: u8) -> String {
        format!(
            "expected {what} at byte {} of the answer, found `{}`",
            self.read,
            (b as char).escape_default()
        )
    }

    fn byte(&mut self, b: u8) -> Result<Feed, String> {
        match self.phase {
            Phase::Element => return self.element_byte(b),
            _ if is_space(b) && self.phase != Phase::KeyString => return Ok(Feed::More),
            _ => {}
        }
        match self.phase {
            Phase::Open if b == b'{' => self.phase = Phase::Key,
            Phase::Open => return Err(self.expect("`{`", b)),
            Phase::Key if b == b'"' => {
                self.key.clear();
                self.phase = Phase::KeyString;
            }
            Phase::Key => return Err(self.expect("the field `jobs`", b)),
            Phase::KeyString if b == b'"' && self.key.last() != Some(&b'\\') => {
                if self.key != b"jobs" {
                    return Err(format!(
                        "the answer has a field `{}`; the job list has only `jobs`",
                        String::from_utf8_lossy(&self.key)
                    ));
                }
                self.phase = Phase::Colon;
            }
            Phase::KeyString => {
                // Only `jobs` is valid; a longer key is wrong whatever it says.
                if self.key.len() > 64 {
                    return Err("the answer has a field other than `jobs`".to_owned());
                }
                self.key.push(b);
            }
            Phase::Colon if b == b':' => self.phase = Phase::ArrayOpen,
            Phase::Colon => return Err(self.expect("`:`", b)),
            Phase::ArrayOpen if b == b'[' => self.phase = Phase::BeforeElement { first: true },
            Phase::ArrayOpen => return Err(self.expect("`[`", b)),
            Phase::BeforeElement { first: true } if b == b']' => self.phase = Phase::AfterArray,
            Phase::BeforeElement { .. } if matches!(b, b']' | b',' | b'}' | b':') => {
                return Err(self.expect("a job", b));
            }
            Phase::BeforeElement { .. } => self.start_element(b),
            Phase::AfterElement if b == b',' => {
                if self.page.jobs.len() >= self.limits.max_jobs {
                    self.page.left = Some(Left::PageFull);
                    return Ok(Feed::Stop);
                }
                self.phase = Phase::BeforeElement { first: false };
            }
            Phase::AfterElement if b == b']' => self.phase = Phase::AfterArray,
            Phase::AfterElement => return Err(self.expect("`,` or `]`", b)),
            Phase::AfterArray if b == b'}' => {
                self.phase = Phase::Done;
                return Ok(Feed::More);
            }
            Phase::AfterArray => {
                return Err(self.expect("`}` (the job list has only `jobs`)", b));
            }
            Phase::Done => return Err(self.expect("the end of the answer", b)),
            Phase::Element => unreachable!("handled above"),
        }
        Ok(Feed::More)
    }

    fn start_element(&mut self, b: u8) {
        self.phase = Phase::Element;
        self.depth = 0;
        self.in_string = false;
        self.escaped = false;
        self.scalar = false;
        self.keep = true;
        self.element = Vec::new();
        self.element_len = 0;
        match b {
            b'{' | b'[' => self.depth = 1,
            b'"' => self.in_string = true,
            _ => self.scalar = true,
        }
        self.push(b);
    }

    fn push(&mut self, b: u8) {
        self.element_len += 1;
        if self.keep {
            if self.element_len > self.limits.max_job_bytes {
                // Too large to keep: scanned to its end, never held.
                self.keep = false;
                self.element = Vec::new();
            } else {
                self.element.push(b);
            }
        }
    }

    fn element_byte(&mut self, b: u8) -> Result<Feed, String> {
        if self.scalar && (is_space(b) || matches!(b, b',' | b']')) {
            // A scalar ends at the byte after it, which belongs to what follows.
            let done = self.complete()?;
            if done == Feed::Stop {
                return Ok(Feed::Stop);
            }
            return self.byte(b);
        }
        self.push(b);
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.in_string = false;
                if self.depth == 0 {
                    return self.complete();
                }
            }
            return Ok(Feed::More);
        }
        match b {
            b'"' => self.in_string = true,
            b'{' | b'[' => self.depth += 1,
            b'}' | b']' => {
                self.depth = self.depth.saturating_sub(1);
                if self.depth == 0 && !self.scalar {
                    return self.complete();
                }
            }
            _ => {}
        }
        Ok(Feed::More)
    }

    /// One element scanned: kept, skipped, or left for the next poll.
    fn complete(&mut self) -> Result<Feed, String> {
        self.phase = Phase::AfterElement;
        let position = self.position;
        self.position += 1;
        let bytes = self.element_len;
        if !self.keep {
            self.page.skipped.push((position, bytes));
            return Ok(Feed::More);
        }
        if !self.page.jobs.is_empty() && self.kept_bytes + bytes > self.limits.max_kept_bytes {
            self.page.left = Some(Left::KeptBytes);
            return Ok(Feed::Stop);
        }
        let element = std::mem::take(&mut self.element);
        let job: Value = serde_json::from_slice(&element)
            .map_err(|e| format!("job #{} of the list is not JSON: {e}", position + 1))?;
        self.kept_bytes += bytes;
        self.page.jobs.push(job);
        Ok(Feed::More)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn limits() -> ListLimits {
        ListLimits {
            max_jobs: 100,
            max_job_bytes: MAX_JOB_BYTES,
            max_kept_bytes: MAX_KEPT_BYTES,
            max_read_bytes: MAX_READ_BYTES,
        }
    }

    /// Scans `answer` fed in chunks of `size` bytes.
    fn scan(answer: &[u8], size: usize, limits: ListLimits) -> Result<JobPage, String> {
        let mut scanner = Scanner::new(limits);
        for chunk in answer.chunks(size.max(1)) {
            if scanner.feed(chunk)? == Feed::Stop {
                break;
            }
        }
        scanner.finish()
    }

    #[test]
    fn jobs_are_read_as_serde_reads_them_whatever_the_chunking() {
        let list = json!({ "jobs": [
            { "id": "a", "parameters": { "q": "]}\"{[,", "nested": [[1, 2], { "x": null }] } },
            { "id": "b\\\"", "n": -1.5e3, "t": true, "f": false },
            "a string job ] }",
            12345,
            null,
            [],
            {}
        ] });
        for text in [
            list.to_string(),
            serde_json::to_string_pretty(&list).expect("json"),
        ] {
            for size in [1, 2, 3, 7, 64, 1 << 20] {
                let page = scan(text.as_bytes(), size, limits()).expect("valid");
                assert_eq!(Value::Array(page.jobs), list["jobs"], "chunks of {size}");
                assert_eq!(page.left, None);
                assert!(page.skipped.is_empty());
            }
        }
        let page = scan(b" { \"jobs\" : [ ] } \n", 1, limits()).expect("empty");
        assert!(page.jobs.is_empty());
    }

    #[test]
    fn a_full_page_stops_reading_and_says_jobs_are_left() {
        let jobs: Vec<Value> = (0..10)
            .map(|i| json!({ "id": format!("job-{i}") }))
            .collect();
        let text = json!({ "jobs": jobs }).to_string();
        let page = scan(
            text.as_bytes(),
            5,
            ListLimits {
                max_jobs: 3,
                ..limits()
            },
        )
        .expect("valid");
        assert_eq!(page.jobs, jobs[..3]);
        assert_eq!(page.left, Some(Left::PageFull));
        // Exactly a page: nothing is left.
        let three = json!({ "jobs": jobs[..3] }).to_string();
        let page = scan(
            three.as_bytes(),
            5,
            ListLimits {
                max_jobs: 3,
                ..limits()
            },
        )
        .expect("valid");
        assert_eq!((page.jobs.len(), page.left), (3, None));
    }

    #[test]
    fn an_oversize_job_is_skipped_without_being_held_and_the_rest_are_read() {
        let huge = "x".repeat(MAX_JOB_BYTES + 1);
        let text = json!({ "jobs": [{ "id": "a" }, { "id": "huge", "pad": huge }, { "id": "b" }] })
            .to_string();
        let page = scan(text.as_bytes(), 1000, limits()).expect("valid");
        let ids: Vec<&str> = page.jobs.iter().filter_map(|j| j["id"].as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(page.skipped.len(), 1);
        assert_eq!(page.skipped[0].0, 1);
        assert!(page.skipped[0].1 > MAX_JOB_BYTES);
    }

    #[test]
    fn the_kept_and_read_budgets_leave_jobs_for_the_next_poll() {
        let pad = "p".repeat(1000);
        let jobs: Vec<Value> = (0..50)
            .map(|i| json!({ "id": format!("job-{i}"), "pad": pad }))
            .collect();
        let text = json!({ "jobs": jobs }).to_string();
        let kept = scan(
            text.as_bytes(),
            4096,
            ListLimits {
                max_kept_bytes: 10_000,
                ..limits()
            },
        )
        .expect("valid");
        assert_eq!(kept.left, Some(Left::KeptBytes));
        assert!((9..=10).contains(&kept.jobs.len()), "{}", kept.jobs.len());
        let read = scan(
            text.as_bytes(),
            4096,
            ListLimits {
                max_read_bytes: 5_000,
                ..limits()
            },
        )
        .expect("valid");
        assert_eq!(read.left, Some(Left::ReadBytes));
        assert_eq!(read.jobs.len(), 4);
    }

    #[test]
    fn what_is_not_the_documented_list_is_an_error() {
        for (answer, why) in [
            (&b"[]"[..], "expected `{`"),
            (b"{\"job\": []}", "field `job`"),
            (b"{\"jobs\": []", "ended before"),
            (b"{\"jobs\": [{\"id\": 1}", "ended before"),
            (b"{\"jobs\": [1,]}", "expected a job"),
            (b"{\"jobs\": [1] , \"more\": 2}", "expected `}`"),
            (b"{\"jobs\": [{\"id\": }]}", "not JSON"),
            (b"{\"jobs\": []} x", "the end of the answer"),
        ] {
            let error = scan(answer, 3, limits()).expect_err(why);
            assert!(
                error.contains(why),
                "{}: {error}",
                String::from_utf8_lossy(answer)
            );
        }
    }
}
