//! Progress of long cluster work on stderr: a bar when the number of items is known, a
//! spinner otherwise, and nothing at all when stderr is not a terminal or the output is JSON
//! (so logs and pipes stay clean).

use std::{io::IsTerminal, sync::Mutex, time::Duration};

use indicatif::{ProgressBar, ProgressStyle};
use tenantry_cluster::ops::{Progress, Silent};

use crate::output::Output;

/// A bar or spinner on stderr.
struct TerminalProgress {
    bar: Mutex<Option<ProgressBar>>,
}

impl TerminalProgress {
    fn with_bar(&self, f: impl FnOnce(&ProgressBar)) {
        if let Ok(slot) = self.bar.lock()
            && let Some(bar) = slot.as_ref()
        {
            f(bar);
        }
    }
}

impl Progress for TerminalProgress {
    fn begin(&self, step: &str, total: Option<u64>) {
        let bar = match total {
            Some(n) => ProgressBar::new(n).with_style(
                ProgressStyle::with_template(
                    "{spinner} {prefix} [{bar:24}] {pos}/{len} {wide_msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {prefix} {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        bar.set_prefix(step.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        if let Ok(mut slot) = self.bar.lock()
            && let Some(old) = slot.replace(bar)
        {
            old.finish_and_clear();
        }
    }

    fn advance(&self, item: &str) {
        self.with_bar(|bar| {
            if bar.length().is_some() {
                bar.inc(1);
            }
            bar.set_message(item.to_owned());
        });
    }

    fn waiting(&self, what: &str) {
        self.with_bar(|bar| bar.set_message(format!("waiting for {what}")));
    }

    fn end(&self) {
        if let Ok(mut slot) = self.bar.lock()
            && let Some(bar) = slot.take()
        {
            bar.finish_and_clear();
        }
    }
}

/// The progress display for a command printing `output`.
pub fn for_output(output: Output) -> Box<dyn Progress> {
    if output == Output::Text && std::io::stderr().is_terminal() {
        Box::new(TerminalProgress {
            bar: Mutex::new(None),
        })
    } else {
        Box::new(Silent)
    }
}
