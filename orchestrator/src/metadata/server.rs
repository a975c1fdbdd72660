//! The endpoint's listener: a blocking accept loop on one small thread
//! (each request answered on a short-lived thread of its own, a few at
//! most, within a deadline and a size cap), bound inside a task's network namespace (or on the host's loopback for
//! a host-mode task), answering from the supervisor's snapshot. No async
//! runtime, no HTTP crate: an idle endpoint is one parked thread.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use berth_runtime::{cgroup_stats, cgroups};
use serde_json::{json, Value};

use super::json::{route, Route, Snapshot, ADDRESS};
use super::stats::{docker_stats, system_cpu, Reading};
use crate::credentials::provider;
use crate::credentials::roles::{self, CredentialsRoute};

/// The supervisor's latest view of its task, read by every listener.
pub type Shared = Arc<Mutex<Snapshot>>;

/// The port the containers reach the endpoint on, as on ECS.
pub const PORT: u16 = 80;
/// The port the listener binds in the namespace (the agent's own, 51679),
/// which [`PORT`] is redirected to there: a container keeps 0.0.0.0:80.
pub const LISTEN_PORT: u16 = 51679;
/// A request line and headers past this are refused: the endpoint takes
/// GETs only.
const MAX_HEAD: usize = 8 * 1024;
/// A client whose request is not all in this long after it connected is
/// dropped: a deadline for the whole request, so that trickling bytes
/// cannot hold a serving thread.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// Requests answered at once, each on its own short-lived thread: a
/// container that opens connections and sends nothing holds at most these.
const MAX_CLIENTS: usize = 4;
/// A serving thread's stack: it parses a request line and writes JSON.
const STACK: usize = 256 * 1024;

/// Where a listener binds.
#[derive(Clone, Debug)]
pub enum Place {
    /// 169.254.170.2:[`LISTEN_PORT`] inside the network namespace at this
    /// path (the address on its `lo`, port 80 redirected to it).
    Namespace(PathBuf),
    /// 127.0.0.1 on a port the kernel picks: a host-mode task.
    HostLoopback,
}

/// Bind a listener at `place` and serve `shared` from a thread of its
/// own until the process ends; returns the base URI the containers are
/// told (`http://169.254.170.2` or `http://127.0.0.1:<port>`).
pub fn start(place: Place, shared: Shared) -> std::io::Result<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("metadata".into())
        .stack_size(STACK)
        .spawn(move || match bind(&place) {
            Ok(listener) => {
                let base = listener.local_addr().map(|a| base_uri(&place, a));
                let ok = base.is_ok();
                let _ = tx.send(base);
                if ok {
                    serve(&listener, &shared);
                }
            }
            Err(e) => {
                let _ = tx.send(Err(e));
            }
        })?;
    rx.recv()
        .map_err(|_| std::io::Error::other("the metadata thread ended before it bound"))?
}

fn base_uri(place: &Place, bound: SocketAddr) -> String {
    match place {
        Place::Namespace(_) => format!("http://{ADDRESS}"),
        Place::HostLoopback => format!("http://{bound}"),
    }
}

/// Join the namespace (this thread only), give its `lo` the address and
/// redirect port 80 to the listener, and bind there: the socket stays in
/// that namespace whichever thread uses it. All from the one thread that
/// serves, which joins the namespace once.
fn bind(place: &Place) -> std::io::Result<TcpListener> {
    match place {
        Place::Namespace(netns) => {
            join(netns)?;
            let address: Ipv4Addr = ADDRESS.parse().map_err(std::io::Error::other)?;
            berth_net::add_local_address_here(address).map_err(std::io::Error::other)?;
            berth_net::nat::redirect_local_port_here(address, PORT, LISTEN_PORT)
                .map_err(std::io::Error::other)?;
            TcpListener::bind((address, LISTEN_PORT))
        }
        Place::HostLoopback => TcpListener::bind((Ipv4Addr::LOCALHOST, 0)),
    }
}

fn join(netns: &Path) -> std::io::Result<()> {
    let file = std::fs::File::open(netns)?;
    nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| std::io::Error::other(format!("join {}: {e}", netns.display())))
}

fn serve(listener: &TcpListener, shared: &Shared) {
    // Each container's last stats reading: the next one's precpu_stats.
    let readings: Arc<Mutex<Readings>> = Arc::default();
    let busy = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        match stream {
            Ok(s) => spawn_answer(s, shared, &readings, &busy),
            Err(e) => tracing::warn!("metadata accept: {e}"),
        }
    }
}

/// Answer `stream` on a short-lived thread of its own, so that a slow
/// client holds only its own thread; past [`MAX_CLIENTS`] at once the
/// connection is closed unanswered (the SDKs retry), which bounds what a
/// container can make the supervisor hold.
fn spawn_answer(
    stream: TcpStream,
    shared: &Shared,
    readings: &Arc<Mutex<Readings>>,
    busy: &Arc<AtomicUsize>,
) {
    if busy.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
        busy.fetch_sub(1, Ordering::SeqCst);
        tracing::debug!("metadata: {MAX_CLIENTS} requests in progress, one dropped");
        return;
    }
    let (shared, readings, done) = (shared.clone(), readings.clone(), busy.clone());
    // A thread spawned here inherits this thread's network namespace (the
    // task's), which the stats route reads through /proc/thread-self.
    let spawned = std::thread::Builder::new()
        .name("metadata-client".into())
        .stack_size(STACK)
        .spawn(move || {
            if let Err(e) = answer(stream, &shared, &readings) {
                tracing::debug!("metadata request: {e}");
            }
            done.fetch_sub(1, Ordering::SeqCst);
        });
    if let Err(e) = spawned {
        busy.fetch_sub(1, Ordering::SeqCst);
        tracing::warn!("metadata: no thread for a request: {e}");
    }
}

/// A request's head as read: its request line, or too large.
#[derive(Debug, PartialEq)]
enum Head {
    Line(String),
    TooLarge,
}

/// Read the request line and headers of `stream`, at most [`MAX_HEAD`]
/// bytes in all and within [`CLIENT_TIMEOUT`] of the first read in all:
/// the deadline is for the whole request, not each read, so a client
/// trickling a byte at a time is dropped too. The headers are dropped:
/// nothing in them changes the answer.
fn read_head(stream: &TcpStream) -> std::io::Result<Head> {
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let mut reader = BufReader::new(Deadline { stream, deadline }.take(MAX_HEAD as u64 + 1));
    let mut line = Vec::new();
    let mut head = reader.read_until(b'\n', &mut line)?;
    let mut header = Vec::new();
    while head <= MAX_HEAD && line.ends_with(b"\n") {
        header.clear();
        let n = reader.read_until(b'\n', &mut header)?;
        head += n;
        if n == 0 || header == b"\r\n" || header == b"\n" {
            break;
        }
    }
    if head > MAX_HEAD {
        return Ok(Head::TooLarge);
    }
    Ok(Head::Line(String::from_utf8_lossy(&line).into_owned()))
}

/// A stream whose every read waits at most until `deadline`.
struct Deadline<'a> {
    stream: &'a TcpStream,
    deadline: Instant,
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf)
    }
}

/// One request, one answer, then the connection closes.
fn answer(stream: TcpStream, shared: &Shared, readings: &Mutex<Readings>) -> std::io::Result<()> {
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let line = match read_head(&stream)? {
        Head::Line(line) => line,
        Head::TooLarge => return write_response(&stream, 431, &json!("request header too large")),
    };
    let (status, body) = {
        let snapshot = shared
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone());
        match (credentials_route(&line), stats_route(&line)) {
            (Some(route), _) => provider::answer(snapshot.credentials.as_deref(), route),
            (None, Some(route)) => {
                let mut readings = readings.lock().unwrap_or_else(|p| p.into_inner());
                stats(route, &snapshot, &mut readings)
            }
            (None, None) => respond(&line, &snapshot),
        }
    };
    write_response(&stream, status, &body)
}

/// The status and body for request line `line`: pure.
pub fn respond(line: &str, snapshot: &Snapshot) -> (u16, Value) {
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method != "GET" {
        return (
            405,
            json!(format!("method {method:?} not allowed: GET only")),
        );
    }
    let not_found = |id: &str| {
        (
            404,
            json!(format!(
                "V4 container metadata handler: unable to get task arn from request: no container with id {id:?}"
            )),
        )
    };
    let answer = match route(path) {
        None => return (404, json!(format!("no route {path:?}"))),
        Some(Route::Container(id)) => snapshot.container_json(id).ok_or(id),
        Some(Route::Task(id)) => snapshot.task_json(id, false).ok_or(id),
        Some(Route::TaskWithTags(id)) => snapshot.task_json(id, true).ok_or(id),
        // Read from the kernel: [`stats`], not here.
        Some(Route::Stats(_) | Route::TaskStats(_)) => {
            return (404, json!("stats are read by the listener"))
        }
    };
    match answer {
        Ok(v) => (200, v),
        Err(id) => not_found(id),
    }
}

/// The credentials route of a GET request line, if it is one.
fn credentials_route(line: &str) -> Option<CredentialsRoute<'_>> {
    let mut parts = line.split_whitespace();
    if parts.next() != Some("GET") {
        return None;
    }
    roles::credentials_route(parts.next()?)
}

/// Each container's last reading, by runtime id.
type Readings = BTreeMap<String, Reading>;

/// The stats route of a GET request line, if it is one.
fn stats_route(line: &str) -> Option<Route<'_>> {
    let mut parts = line.split_whitespace();
    if parts.next() != Some("GET") {
        return None;
    }
    route(parts.next()?).filter(|r| matches!(r, Route::Stats(_) | Route::TaskStats(_)))
}

/// `/stats` (one container) or `/task/stats` (every container, by id),
/// read now from the cgroups and this thread's namespace's interfaces
/// (the task's; in bridge mode, the asking container's).
fn stats(route: Route<'_>, snapshot: &Snapshot, readings: &mut Readings) -> (u16, Value) {
    let (Route::Stats(id) | Route::TaskStats(id)) = route else {
        return (404, json!("no stats route"));
    };
    if snapshot.definition_of(id).is_none() {
        return (404, json!(format!("no container with id {id:?}")));
    }
    let net_dev = std::fs::read_to_string("/proc/thread-self/net/dev").unwrap_or_default();
    let (system_cpu_ns, online_cpus) =
        system_cpu(&std::fs::read_to_string("/proc/stat").unwrap_or_default());
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let mut all = serde_json::Map::new();
    for (rid, name) in snapshot.containers() {
        let path = cgroups::container_path(&snapshot.cgroup_parent, &name);
        // A container not running has no cgroup: null, as the agent shows.
        let value = match cgroup_stats::read(&path) {
            Some(cgroup) => {
                let now = Reading {
                    at: at.clone(),
                    cgroup,
                    system_cpu_ns,
                    online_cpus,
                };
                let v = docker_stats(&rid, &name, &now, readings.get(&rid), &net_dev);
                readings.insert(rid.clone(), now);
                v
            }
            None => Value::Null,
        };
        all.insert(rid, value);
    }
    match route {
        Route::Stats(id) => (200, all.remove(id).unwrap_or(Value::Null)),
        _ => (200, Value::Object(all)),
    }
}

fn write_response(mut stream: &TcpStream, status: u16, body: &Value) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Internal Server Error",
    };
    let body = body.to_string();
    write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_gets_of_known_routes_are_answered() {
        let s = Snapshot::default();
        assert_eq!(respond("POST /v4/x HTTP/1.1", &s).0, 405);
        assert_eq!(respond("GET /nope HTTP/1.1", &s).0, 404);
        assert_eq!(respond("GET /v4/x HTTP/1.1", &s).0, 404);
        assert_eq!(respond("", &s).0, 405);
    }

    #[test]
    fn a_host_mode_listener_answers_on_loopback() {
        let shared = Shared::default();
        let base = start(Place::HostLoopback, shared).unwrap();
        let addr = base.strip_prefix("http://").unwrap();
        let mut s = TcpStream::connect(addr).unwrap();
        write!(s, "GET /v4/x/task HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        let mut out = String::new();
        std::io::Read::read_to_string(&mut s, &mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 404 "), "{out}");
        assert!(out.contains("no container with id"), "{out}");
    }

    /// A client that keeps sending without ever ending its request.
    fn trickle(
        addr: &str,
        stop: Arc<std::sync::atomic::AtomicBool>,
    ) -> std::thread::JoinHandle<()> {
        let mut s = TcpStream::connect(addr).unwrap();
        write!(s, "GET /").unwrap();
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                if s.write_all(b"a").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    }

    fn get(addr: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        // A guard against hanging the test run, not a timed assertion.
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        write!(s, "GET /v4/x HTTP/1.1\r\n\r\n").unwrap();
        let mut out = String::new();
        let _ = std::io::Read::read_to_string(&mut s, &mut out);
        out
    }

    #[test]
    fn a_client_trickling_bytes_does_not_hold_the_endpoint() {
        let base = start(Place::HostLoopback, Shared::default()).unwrap();
        let addr = base.strip_prefix("http://").unwrap().to_string();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let slow = trickle(&addr, stop.clone());
        std::thread::sleep(Duration::from_millis(300));
        let out = get(&addr);
        stop.store(true, Ordering::SeqCst);
        slow.join().unwrap();
        assert!(out.starts_with("HTTP/1.1 404 "), "{out:?}");
    }

    #[test]
    fn a_trickled_request_is_cut_off_at_the_deadline() {
        let base = start(Place::HostLoopback, Shared::default()).unwrap();
        let addr = base.strip_prefix("http://").unwrap().to_string();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Ends when a write fails: the server closed the connection.
        let slow = trickle(&addr, stop.clone());
        let guard = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(120));
                stop.store(true, Ordering::SeqCst);
            })
        };
        slow.join().unwrap();
        assert!(
            !stop.load(Ordering::SeqCst),
            "the server never dropped the client"
        );
        drop(guard);
    }

    #[test]
    fn an_endless_request_line_is_refused_at_the_cap() {
        let base = start(Place::HostLoopback, Shared::default()).unwrap();
        let addr = base.strip_prefix("http://").unwrap();
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        let mut line = b"GET /".to_vec();
        line.resize(MAX_HEAD * 2, b'a');
        // The server may close before all is sent: the answer is what counts.
        let _ = s.write_all(&line);
        let mut out = Vec::new();
        let _ = std::io::Read::read_to_end(&mut s, &mut out);
        let out = String::from_utf8_lossy(&out);
        assert!(out.starts_with("HTTP/1.1 431 "), "{out:?}");
    }
}
