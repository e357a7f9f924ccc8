//! Exactly-once simulation: 1,000 jobs, overlapping orchestrator ticks, ticks killed at
//! random points (a crash: the task is dropped wherever it is awaiting), and failures
//! injected on both sides — the control plane answers 503 before a request takes effect or
//! 502 after it did, the API server answers 503 before or 504 after. Then every run's exit
//! handler reports, with crashes too. Measured: Workflows created, duplicates, final
//! statuses.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use agent::kubernetes::Namespace;
use agent::report::{LogDestination, RunReport, report};
use agent::tick::{TickConfig, tick};
use control_plane::api::JobState;
use control_plane::test_support::TestServer;
use outpost_core::RunIdentity;
use serde_json::json;
use support::fake_kube::FakeKube;

const JOBS: usize = 1000;
const LEASE: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_jobs_become_a_thousand_workflows_through_crashes_and_faults() {
    let started = Instant::now();
    let server = TestServer::start_with_faults(|_| {}, 0.05).await;
    let mut fake = FakeKube::default();
    fake.failure_rate = 0.05;
    fake.install_template(support::committed_template("postgres"));
    // Argo enforces template referencing; its ConfigMap is read (with injected failures too)
    // before every tick.
    support::restrict_templates(&fake);
    for i in 0..JOBS {
        server
            .enqueue(json!({
                "id": format!("job-{i:04}"), "runId": format!("run-{i:04}"), "connector": "postgres",
                "connection": "pg-prod", "transferMode": "direct-ingestion",
                "parameters": { "include-schemas": format!("^db{i}$") }
            }))
            .await;
    }

    let descriptors = support::descriptors();
    let mut crashes = 0;
    let mut ticks = 0;
    for round in 0..200 {
        let records = server.records().await;
        if records
            .jobs
            .iter()
            .all(|r| r.status.state >= JobState::Submitted)
        {
            break;
        }
        // Three overlapping ticks; each may be killed at a random moment, timed from its
        // start. In the first round every tick is killed within 20 to 150 ms, well inside a
        // tick over 1,000 jobs, so every run of the test crashes ticks mid-work; later
        // rounds kill at random.
        let mut running = Vec::new();
        for k in 0..3 {
            let mut config = TickConfig::new(&format!("tick-{round}-{k}"), descriptors.clone());
            config.lease = LEASE;
            config.page_size = 100;
            let client = server.client();
            // The first round's ticks must live until they are killed: an injected API fault
            // in their preflight (the version and Argo-config reads) would end them early,
            // and the round would prove nothing. Later rounds get faults from the start.
            let mut api = fake.clone();
            if round == 0 {
                api.failure_rate = 0.0;
            }
            let namespace = Namespace::new(api.client("outpost"), "outpost");
            let task = tokio::spawn(async move { tick(&client, &namespace, &config).await });
            let kill_after = if round == 0 {
                Some(Duration::from_millis(20 + rand::random::<u64>() % 130))
            } else {
                (rand::random::<f64>() < 0.5)
                    .then(|| Duration::from_millis(20 + rand::random::<u64>() % 2000))
            };
            if let Some(delay) = kill_after {
                let abort = task.abort_handle();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    abort.abort();
                });
            }
            running.push(task);
            ticks += 1;
        }
        for task in running {
            if let Err(e) = task.await
                && e.is_cancelled()
            {
                crashes += 1;
            }
        }
        // Leases of crashed ticks lapse before the next round can take their jobs.
        tokio::time::sleep(LEASE + Duration::from_millis(100)).await;
    }

    // Argo runs every Workflow; each exit handler reports (and may crash, and is retried,
    // as Argo's retryStrategy on the exit handler does).
    let workflows = fake.workflows();
    for workflow in &workflows {
        fake.finish(
            workflow["metadata"]["name"].as_str().expect("name"),
            "Succeeded",
        );
    }
    let mut report_crashes = 0;
    for workflow in fake.workflows() {
        let annotation = |key: &str| {
            workflow["metadata"]["annotations"][key]
                .as_str()
                .expect("annotation")
                .to_owned()
        };
        let run = RunReport {
            run: RunIdentity::new(
                "postgres",
                "pg-prod",
                &annotation("outpost.dev/job-id"),
                &annotation("outpost.dev/run-id"),
            )
            .expect("ids"),
            workflow: workflow["metadata"]["name"]
                .as_str()
                .expect("name")
                .to_owned(),
            argo_status: "Succeeded".to_owned(),
        };
        for attempt in 0.. {
            assert!(
                attempt < 20,
                "exit handler of {} never succeeded",
                run.workflow
            );
            let client = server.client();
            let namespace = Namespace::new(fake.client("outpost"), "outpost");
            let run = run.clone();
            let task = tokio::spawn(async move {
                report(&client, &namespace, &run, &LogDestination::ControlPlane).await
            });
            if rand::random::<f64>() < 0.1 {
                tokio::time::sleep(Duration::from_micros(rand::random::<u64>() % 3000)).await;
                if !task.is_finished() {
                    task.abort();
                    report_crashes += 1;
                    let _ = task.await;
                    continue;
                }
            }
            if matches!(task.await, Ok(Ok(_))) {
                break;
            }
        }
    }

    // Exactly 1,000 Workflows, one per job, and every job's final status reported.
    let workflows = fake.workflows();
    let mut per_job: BTreeMap<String, usize> = BTreeMap::new();
    for workflow in &workflows {
        let job = workflow["metadata"]["annotations"]["outpost.dev/job-id"]
            .as_str()
            .expect("job")
            .to_owned();
        *per_job.entry(job).or_default() += 1;
    }
    let duplicates: usize = per_job.values().map(|n| n - 1).sum();
    let records = server.records().await;
    let succeeded = records
        .jobs
        .iter()
        .filter(|r| r.status.state == JobState::Succeeded)
        .count();
    let submitted_twice = records
        .jobs
        .iter()
        .filter(|r| {
            r.history
                .iter()
                .filter(|e| e.state == JobState::Submitted)
                .count()
                != 1
        })
        .count();
    let claims: u32 = records.jobs.iter().map(|r| r.claims).sum();
    eprintln!(
        "exactly-once: {} jobs, {} Workflows, {} duplicates, {} succeeded; {} ticks, {} killed; \
         {} exit handlers killed; API server: {} creates, {} AlreadyExists, {} injected failures; \
         {} claims granted; {:.1} s",
        records.jobs.len(),
        workflows.len(),
        duplicates,
        succeeded,
        ticks,
        crashes,
        report_crashes,
        fake.counters.creates.load(Ordering::Relaxed),
        fake.counters.already_exists.load(Ordering::Relaxed),
        fake.counters.injected_failures.load(Ordering::Relaxed),
        claims,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(records.jobs.len(), JOBS);
    assert_eq!(workflows.len(), JOBS, "Workflows created");
    assert_eq!(per_job.len(), JOBS, "every job has a Workflow");
    assert_eq!(duplicates, 0);
    assert_eq!(
        fake.counters.creates.load(Ordering::Relaxed),
        JOBS as u64,
        "creates the API server accepted"
    );
    assert_eq!(succeeded, JOBS, "every job's final status reported");
    assert_eq!(
        submitted_twice, 0,
        "each job recorded `submitted` exactly once"
    );
    assert!(
        crashes >= 3,
        "the first round's three ticks were not all killed mid-work ({crashes} kills): the simulation proves less than it claims"
    );
    assert!(fake.counters.injected_failures.load(Ordering::Relaxed) > 0);
    server.stop().await;
}
