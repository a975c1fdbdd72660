//! The bounded buffer between the monitor's pump and a receiver: the pump
//! only ever appends (a line over the bound is dropped and counted, as
//! Docker's non-blocking mode and `fluentd-async` do), a thread sends,
//! reconnecting after a failure. Each message is sent whole or retried
//! whole, so a receiver never sees half of one from a fresh connection.

use std::collections::VecDeque;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::transport::Conn;
use super::Address;

/// Between attempts to reach a receiver that is not there.
const DEFAULT_RETRY: Duration = Duration::from_millis(500);

#[derive(Default)]
struct State {
    queue: VecDeque<Vec<u8>>,
    bytes: usize,
    dropped: u64,
    closed: bool,
}

struct Shared {
    driver: &'static str,
    limit: usize,
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicked sender leaves plain data behind: keep using it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(super) struct Queue {
    shared: Arc<Shared>,
    done: mpsc::Receiver<()>,
}

impl Queue {
    pub fn start(
        driver: &'static str,
        address: Address,
        limit: usize,
        retry: Option<Duration>,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            driver,
            limit: limit.max(1),
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let (tx, done) = mpsc::channel();
        let sender = Arc::clone(&shared);
        // The monitor waits for SIGCHLD on a signalfd: a thread with it
        // unblocked would take it (and discard it). The thread inherits the
        // mask in force when it is made, so block everything around that.
        let old = nix::sys::signal::SigSet::all()
            .thread_swap_mask(nix::sys::signal::SigmaskHow::SIG_BLOCK)
            .map_err(std::io::Error::from)?;
        let spawned = std::thread::Builder::new()
            .name(format!("{driver}-forward"))
            // The pump's lines, not deep calls: a small stack keeps the
            // monitor small.
            .stack_size(256 * 1024)
            .spawn(move || {
                send_loop(&sender, &address, retry.unwrap_or(DEFAULT_RETRY));
                let _ = tx.send(());
            });
        let restored = old.thread_set_mask();
        spawned?;
        restored.map_err(std::io::Error::from)?;
        Ok(Self { shared, done })
    }

    /// Queue `message`, or drop it if the buffer is full; never waits for
    /// the receiver.
    pub fn push(&self, message: Vec<u8>) {
        let mut state = self.shared.lock();
        if state.bytes + message.len() > self.shared.limit {
            state.dropped += 1;
            // Counted, and told at 1, 2, 4, 8... so a flood does not flood
            // the monitor's own log.
            if state.dropped.is_power_of_two() {
                tracing::warn!(
                    dropped = state.dropped,
                    "{}: buffer full ({} bytes), line dropped",
                    self.shared.driver,
                    self.shared.limit
                );
            }
            return;
        }
        state.bytes += message.len();
        state.queue.push_back(message);
        drop(state);
        self.shared.wake.notify_one();
    }

    /// Let the sender finish what is queued, for at most `grace`.
    pub fn close(self, grace: Duration) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_all();
        if self.done.recv_timeout(grace).is_err() {
            let left = self.shared.lock().queue.len();
            tracing::warn!("{}: {left} lines not sent in time", self.shared.driver);
        }
        let dropped = self.shared.lock().dropped;
        if dropped > 0 {
            tracing::warn!(dropped, "{}: lines dropped in all", self.shared.driver);
        }
    }
}

fn send_loop(shared: &Shared, address: &Address, retry: Duration) {
    let mut conn: Option<Conn> = None;
    let mut failing = false;
    loop {
        let message = {
            let mut state = shared.lock();
            while state.queue.is_empty() && !state.closed {
                state = shared.wake.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            match state.queue.front() {
                Some(m) => m.clone(),
                None => return,
            }
        };
        let sent = match conn.as_mut() {
            Some(c) => c.send(&message),
            None => Conn::connect(address).and_then(|mut c| {
                let r = c.send(&message);
                conn = Some(c);
                r
            }),
        };
        match sent {
            Ok(()) => {
                if failing {
                    tracing::info!("{}: receiver reached again", shared.driver);
                    failing = false;
                }
                let mut state = shared.lock();
                state.bytes -= message.len();
                state.queue.pop_front();
            }
            Err(e) => {
                conn = None;
                if !failing {
                    tracing::warn!("{}: send to {address:?}: {e}", shared.driver);
                    failing = true;
                }
                if !wait_to_retry(shared, retry) {
                    return;
                }
            }
        }
    }
}

/// Sleep `retry`, unless the monitor is closing: then give up at once,
/// since nothing will reach a receiver that is not there.
fn wait_to_retry(shared: &Shared, retry: Duration) -> bool {
    let until = Instant::now() + retry;
    let mut state = shared.lock();
    loop {
        if state.closed {
            return false;
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        state = shared
            .wake
            .wait_timeout(state, until - now)
            .map(|(s, _)| s)
            .unwrap_or_else(|e| e.into_inner().0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn sends_in_order_and_drops_past_the_bound() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("r.sock");
        let receiver = UnixDatagram::bind(&path).expect("bind");
        let q = Queue::start("test", Address::Unixgram(path), 1024, None).expect("start");
        for i in 0..5 {
            q.push(format!("m{i}").into_bytes());
        }
        q.push(vec![b'x'; 2000]);
        q.close(Duration::from_secs(10));
        let mut got = Vec::new();
        receiver.set_nonblocking(true).expect("nonblocking");
        let mut buf = [0u8; 4096];
        while let Ok(n) = receiver.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        assert_eq!(got, ["m0", "m1", "m2", "m3", "m4"]);
    }

    #[test]
    fn an_absent_receiver_neither_blocks_nor_keeps_the_close_waiting() {
        let dir = tempfile::tempdir().expect("tempdir");
        let q = Queue::start(
            "test",
            Address::Unixgram(dir.path().join("none.sock")),
            64,
            Some(Duration::from_secs(3600)),
        )
        .expect("start");
        for _ in 0..100 {
            q.push(vec![b'y'; 10]);
        }
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            q.close(Duration::from_secs(3600));
            let _ = tx.send(());
        });
        rx.recv()
            .expect("close returned while the retry wait was an hour");
    }
}
