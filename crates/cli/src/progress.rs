//! Progress for long files: a bar with rate and ETA on a terminal, plain log lines otherwise
//! (so CI logs and cron mails stay readable).

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Reports bytes processed out of a known total.
pub struct Progress {
    bar: Option<ProgressBar>,
    total: u64,
    label: String,
    last_log: Mutex<Instant>,
}

impl Progress {
    /// A progress reporter for `total` bytes of work called `label`.
    pub fn new(label: &str, total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_message(label.to_string());
            bar
        });
        Progress {
            bar,
            total,
            label: label.to_string(),
            last_log: Mutex::new(Instant::now()),
        }
    }

    /// Records that `done` bytes are processed.
    pub fn set(&self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            return;
        }
        let Ok(mut last) = self.last_log.lock() else {
            return;
        };
        if last.elapsed() >= Duration::from_secs(5) {
            *last = Instant::now();
            let pct = if self.total == 0 {
                100.0
            } else {
                done as f64 * 100.0 / self.total as f64
            };
            tracing::info!("{}: {pct:.0}% read", self.label);
        }
    }

    /// Records `done` items out of `total` (the total may only be known once work starts).
    pub fn set_items(&self, done: u64, total: u64) {
        if let Some(bar) = &self.bar {
            if bar.length() != Some(total) {
                bar.set_length(total);
                bar.set_style(
                    ProgressStyle::with_template(
                        "{msg} [{bar:40}] {human_pos}/{human_len} {per_sec} ETA {eta}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
            }
            bar.set_position(done);
            return;
        }
        let Ok(mut last) = self.last_log.lock() else {
            return;
        };
        if last.elapsed() >= Duration::from_secs(5) {
            *last = Instant::now();
            tracing::info!("{}: {done} of {total}", self.label);
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
