//! Download progress bars on a terminal; nothing when stderr is not one.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use berth_rootfs::pull::{Progress, Quiet};
use berth_rootfs::Digest;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

struct Bars {
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
        bar.set_prefix(digest.short().to_string());
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

pub fn for_downloads() -> Arc<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Arc::new(Bars {
            multi: MultiProgress::new(),
            bars: Mutex::new(HashMap::new()),
        })
    } else {
        Arc::new(Quiet)
    }
}
