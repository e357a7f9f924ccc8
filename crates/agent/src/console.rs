//! What a person sees on the console while a run goes: structured log events always, and on
//! a terminal a spinner (extraction) or a byte bar (upload); and the log subscriber every
//! entrypoint installs first. Presentation only: the extraction and delivery libraries report
//! through their `Progress` traits, implemented here once for every entrypoint.

use std::io::IsTerminal as _;
use std::time::Duration;

use metadata_extract::EntityKind;

/// The log events, and a spinner or bar only when asked for and stderr is a terminal;
/// cleared when dropped.
pub struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    /// Extraction: a spinner naming the current stage.
    pub fn spinner(show: bool) -> Self {
        Self::new(show, || {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        })
    }

    /// Upload: a byte bar.
    pub fn bytes(show: bool) -> Self {
        Self::new(show, || {
            let template = "{spinner} uploading {bytes}/{total_bytes} {wide_bar} {bytes_per_sec}";
            let bar = indicatif::ProgressBar::new(0);
            if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar
        })
    }

    fn new(show: bool, make: impl FnOnce() -> indicatif::ProgressBar) -> Self {
        Self((show && std::io::stderr().is_terminal()).then(make))
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

impl metadata_extract::Progress for Progress {
    fn database(&self, name: &str) {
        tracing::info!(database = name, "extracting database");
        if let Some(bar) = &self.0 {
            bar.set_message(format!("{name}: tables"));
        }
    }
    fn stage(&self, database: &str, kind: EntityKind) {
        tracing::info!(database, stage = kind.stream(), "stage done");
        if let Some(bar) = &self.0 {
            bar.set_message(format!("{database}: {} done", kind.stream()));
        }
    }
}

impl delivery::Progress for Progress {
    fn start(&self, total: u64) {
        if let Some(bar) = &self.0 {
            bar.set_length(total);
        }
    }
    fn file_done(&self, relative: &str, bytes: u64) {
        if let Some(bar) = &self.0 {
            bar.inc(bytes);
        }
        tracing::debug!(file = relative, bytes, "stored");
    }
}

/// Structured logs on stderr: JSON when `json` (one object per line, for log collectors),
/// text otherwise, coloured only on a terminal and without `NO_COLOR`. The level comes from
/// `RUST_LOG` (default `info`, `warn` when `quiet`).
pub fn init_logging(json: bool, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if quiet { "warn" } else { "info" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    match json {
        true => builder.json().init(),
        false => builder.init(),
    }
}

/// Prints an entrypoint's failure once, redacted with its causes
/// (`error: … (exit code 75)`), and answers its exit code.
pub fn show(failure: &outpost_core::Failure) -> outpost_core::ExitCode {
    eprintln!(
        "error: {} (exit code {})",
        failure.message(),
        failure.code()
    );
    failure.code()
}
