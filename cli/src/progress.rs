//! Download progress bars on a terminal; nothing when stderr is not one.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use berth_rootfs::progress::{Progress, Quiet};
use berth_rootfs::Digest;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

struct Bars {
    verb: &'static str,
    multi: MultiProgress,
    bars: Mutex<HashMap<Digest, ProgressBar>>,
}

impl Progress for Bars {
    fn blob_started(&self, digest: &Digest, size: u64) {
        let bar = self.multi.add(ProgressBar::new(size));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(format!("{} {}", self.verb, digest.short()));
        if let Ok(mut bars) = self.bars.lock() {
            bars.insert(digest.clone(), bar);
        }
    }

    fn blob_advanced(&self, digest: &Digest, bytes: u64) {
        if let Some(bar) = self.bars.lock().ok().and_then(|b| b.get(digest).cloned()) {
            bar.inc(bytes);
        }
    }

    fn blob_finished(&self, digest: &Digest) {
        if let Some(bar) = self.bars.lock().ok().and_then(|b| b.get(digest).cloned()) {
            bar.finish();
        }
    }
}

/// Bars labelled `verb` ("pull", "unpack") on a terminal; else silence.
pub fn bars(verb: &'static str) -> Arc<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Arc::new(Bars {
            verb,
            multi: MultiProgress::new(),
            bars: Mutex::new(HashMap::new()),
        })
    } else {
        Arc::new(Quiet)
    }
}
