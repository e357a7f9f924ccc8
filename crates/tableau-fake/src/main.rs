//! `tableau-fake`: the Tableau server fake as a process, for the benchmark
//! (`crates/metadata-extract/benches/tableau.sh`) and for trying the connector by hand.
//!
//! Prints `url <URL>` once it listens, serves until its standard input closes, then prints
//! what it saw as one JSON line (`counters …`), so a script can report requests and pages
//! from the server's side rather than trusting the client's own count.

use std::io::{BufRead, Write};
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::Parser;
use tableau_fake::{Faults, Scale, SiteModel, TableauFake};

#[derive(Parser)]
#[command(about = "A Tableau server fake (REST and Metadata API) serving a generated site")]
struct Args {
    /// The site's content URL.
    #[arg(long, default_value = "bench")]
    site: String,
    /// Workbooks; each has one embedded data source.
    #[arg(long, default_value_t = 2000)]
    workbooks: usize,
    #[arg(long, default_value_t = 10)]
    sheets_per_workbook: usize,
    /// Published data sources.
    #[arg(long, default_value_t = 3000)]
    published: usize,
    #[arg(long, default_value_t = 40)]
    fields_per_datasource: usize,
    /// Database tables the data sources read.
    #[arg(long, default_value_t = 3000)]
    tables: usize,
    #[arg(long, default_value = "bench-token")]
    token_name: String,
    /// The token's secret (the benchmark also checks it never reaches the output).
    #[arg(long)]
    token_secret: String,
    /// Every n-th Metadata API request answers HTTP 429 (`Retry-After: 0`).
    #[arg(long)]
    http_429_every: Option<u32>,
    /// Every n-th Metadata API request answers `RATE_EXCEEDED`.
    #[arg(long)]
    rate_exceeded_every: Option<u32>,
    /// Objects per answer beyond which it is cut with `NODE_LIMIT_EXCEEDED`.
    #[arg(long, default_value_t = 20_000)]
    node_limit: usize,
    /// Milliseconds every answer waits (a server's latency).
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Write each Metadata API request answered with data here, one JSON body per line
    /// (the benchmark's baseline replays them).
    #[arg(long)]
    record: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let site = SiteModel::generate(
        &args.site,
        Scale {
            workbooks: args.workbooks,
            sheets_per_workbook: args.sheets_per_workbook,
            published: args.published,
            fields_per_datasource: args.fields_per_datasource,
            tables: args.tables,
        },
    );
    let faults = Faults {
        node_limit: args.node_limit,
        http_429_every: args.http_429_every,
        rate_exceeded_every: args.rate_exceeded_every,
        delay: Duration::from_millis(args.delay_ms),
        // Nothing reads the request log here; at full size it would only grow.
        keep_requests: false,
        ..Faults::default()
    };
    let fake = TableauFake::start(site, &args.token_name, &args.token_secret, faults).await;
    if let Some(path) = &args.record {
        fake.record_pages(path).expect("the record file");
    }
    println!("url {}", fake.url);
    std::io::stdout().flush().expect("stdout");
    // Serve until standard input closes.
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        while std::io::stdin().lock().read_line(&mut line).unwrap_or(0) > 0 {
            line.clear();
        }
    })
    .await
    .expect("stdin");
    fake.flush_record().expect("the record file");
    let c = &fake.counters;
    let load = |n: &std::sync::atomic::AtomicU32| n.load(Ordering::SeqCst);
    println!(
        "counters {}",
        serde_json::json!({
            "signIns": load(&c.sign_ins),
            "signOuts": load(&c.sign_outs),
            "restRequests": load(&c.rest_requests),
            "metadataRequests": load(&c.graphql_requests),
            "pages": load(&c.pages),
            "throttled": load(&c.throttled),
            "nodeLimitHits": load(&c.node_limit_hits),
            "refused": load(&c.refused),
        })
    );
}
