//! The listener: `POST /` on TCP (or TLS), one request at a time per
//! connection (HTTP/1.1, as botocore and the Go SDK speak to ECS).
//!
//! A request is checked in the order a client can fix it: size (413 over
//! the limit), authentication (`auth`), the target (an ECS operation berth
//! serves), the body (JSON, then the model's members and types), and
//! only then dispatched to `ops` on a blocking thread: the orchestrator's
//! calls block on the store (the etcd store drives its own runtime, which
//! must never be entered from an async task). Every answer carries an
//! `x-amzn-RequestId`, and errors the modeled `__type` body.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::Router;
use berth_orchestrator::reconcile::Config;
use berth_orchestrator::{Ecs, EcsError, ErrorKind};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::auth::Auth;
use crate::ops::{self, Context};
use crate::protocol::{self, ApiError};
use crate::wire;

/// The default body limit: ECS's largest requests (a task definition with
/// many containers) are well under it.
pub const DEFAULT_MAX_BODY: usize = 1 << 20;
/// How long a stop waits for calls in flight.
const DRAIN: Duration = Duration::from_secs(10);
/// A body over the limit is read (and dropped) up to this many times the
/// limit, so the client gets to read the 413 rather than a reset.
const DISCARD_FACTOR: usize = 16;

const JSON_1_1: &str = "application/x-amz-json-1.1";

/// How `berth serve` serves.
pub struct ServeOptions {
    pub listen: SocketAddr,
    pub auth: Auth,
    /// HTTPS with this configuration; plain HTTP when None.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub max_body: usize,
}

impl ServeOptions {
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            auth: Auth::default(),
            tls: None,
            max_body: DEFAULT_MAX_BODY,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    // `io`, not `source`: the message carries it once, not twice in a
    // chain.
    #[error("listen on {addr}: {io}")]
    Bind {
        addr: SocketAddr,
        io: std::io::Error,
    },
    #[error("start the server's runtime: {0}")]
    Runtime(std::io::Error),
    #[error("wait for SIGTERM/SIGINT: {0}")]
    Signal(std::io::Error),
}

/// What every request shares: one orchestrator for the server's life.
struct Shared {
    ecs: Arc<Ecs>,
    cfg: Config,
    auth: Auth,
    max_body: usize,
    ids: RequestIds,
}

/// Serve until SIGTERM or SIGINT, then finish the calls in flight and
/// return. `ready` is called once with the bound address (port 0 asks the
/// kernel for one). Call from outside any tokio runtime: the server runs
/// its own.
pub fn serve(
    ecs: Arc<Ecs>,
    cfg: Config,
    opts: ServeOptions,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("berth-serve")
        .build()
        .map_err(ServeError::Runtime)?;
    let shared = Arc::new(Shared {
        ecs,
        cfg,
        auth: opts.auth,
        max_body: opts.max_body,
        ids: RequestIds::new(),
    });
    let result = runtime.block_on(run(shared, opts.listen, opts.tls, ready));
    runtime.shutdown_timeout(DRAIN);
    result
}

async fn run(
    shared: Arc<Shared>,
    listen: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|io| ServeError::Bind { addr: listen, io })?;
    let addr = listener
        .local_addr()
        .map_err(|io| ServeError::Bind { addr: listen, io })?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(ServeError::Signal)?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(ServeError::Signal)?;
    let router = Router::new().fallback(handle).with_state(shared);
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    let graceful = GracefulShutdown::new();
    ready(addr);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and the like pass; the listener stays.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = term.recv() => break,
            _ = int.recv() => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let http = hyper::server::conn::http1::Builder::new();
            let result = match tls {
                None => {
                    let conn = http.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(conn).await
                }
                Some(_) if crate::tls::speaks_plaintext(&stream).await => {
                    crate::tls::refuse_plaintext(stream, addr).await;
                    return;
                }
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(s) => {
                        let conn = http.serve_connection(TokioIo::new(s), service);
                        watcher.watch(conn).await
                    }
                    Err(e) => {
                        tracing::debug!("TLS handshake with {peer}: {e}");
                        return;
                    }
                },
            };
            if let Err(e) = result {
                tracing::debug!("connection from {peer}: {e}");
            }
        });
    }
    tracing::info!("stopping: finishing the calls in flight");
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("calls still in flight after {DRAIN:?}; stopping anyway");
    }
    Ok(())
}

/// Every request, whatever its method and path.
async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let id = shared.ids.next();
    let started = Instant::now();
    let (status, body, op) = match answer(&shared, req).await {
        Ok((op, v)) => (StatusCode::OK, v, op),
        Err((op, e)) => {
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
            (status, e.body, op)
        }
    };
    tracing::info!(
        request_id = %id,
        operation = %op,
        status = status.as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "call"
    );
    respond(status, &id, &body)
}

/// An error as the client sees it: a status and a modeled body.
struct Refusal {
    status: u16,
    body: Value,
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Self {
            status: e.status(),
            body: e.body(),
        }
    }
}

type Answer = Result<(String, Value), (String, Refusal)>;

async fn answer(shared: &Arc<Shared>, req: Request) -> Answer {
    let none = String::new;
    let (parts, body) = req.into_parts();
    if parts.uri.path() != "/" {
        let body = serde_json::json!({
            "__type": "UnknownOperationException",
            "message": format!("berth serves ECS at POST /, not {}", parts.uri.path()),
        });
        return Err((none(), Refusal { status: 404, body }));
    }
    if parts.method != Method::POST {
        let e = ApiError::UnknownOperation(format!(
            "ECS's operations are POST /, not {} /",
            parts.method
        ));
        return Err((none(), e.into()));
    }
    let bytes = read_body(&parts, body, shared.max_body)
        .await
        .map_err(|e| (none(), e.into()))?;
    shared
        .auth
        .check(&parts, &bytes)
        .map_err(|e| (none(), e.into()))?;
    let op = target(&parts).map_err(|e| (none(), e.into()))?;
    let input = request_json(&op, &bytes).map_err(|e| (op.clone(), e.into()))?;
    let shared = Arc::clone(shared);
    let name = op.clone();
    let called = tokio::task::spawn_blocking(move || {
        let ctx = Context {
            ecs: &shared.ecs,
            cfg: &shared.cfg,
        };
        ops::call(&ctx, &name, input)
    })
    .await;
    match called {
        Ok(Ok(v)) => Ok((op.clone(), wire::response(&op, v))),
        Ok(Err(e)) => Err((op, e.into())),
        Err(join) => {
            // A panic in a handler is berth's bug; the server goes on.
            tracing::error!("{op}: {join}");
            let e = ApiError::Ecs(EcsError::new(
                ErrorKind::ServerException,
                format!("berth failed at {op}; see the server's log"),
            ));
            Err((op, e.into()))
        }
    }
}

/// The operation `X-Amz-Target` names, if berth serves it.
fn target(parts: &http::request::Parts) -> Result<String, ApiError> {
    let raw = parts
        .headers
        .get("x-amz-target")
        .ok_or_else(|| ApiError::UnknownOperation("no X-Amz-Target header".into()))?;
    let text = raw
        .to_str()
        .map_err(|_| ApiError::UnknownOperation("X-Amz-Target: not ASCII".into()))?;
    // berth's secret store answers SSM's and Secrets Manager's targets
    // (issue 15); the operation is named by its whole target.
    if ops::secret_store::handler(text).is_some() {
        return Ok(text.to_string());
    }
    let op = protocol::operation(text).ok_or_else(|| {
        ApiError::UnknownOperation(format!(
            "X-Amz-Target {text:?}: not {}.<Operation>",
            protocol::TARGET_PREFIX
        ))
    })?;
    if ops::handler(op).is_none() {
        let why = if wire::is_modeled(op) {
            format!("berth does not implement the ECS operation {op}")
        } else {
            format!("{op} is not an ECS operation")
        };
        return Err(ApiError::UnknownOperation(why));
    }
    Ok(op.to_string())
}

/// The body as JSON, checked against the operation's input shape. An
/// empty body is `{}` (what clients send for no parameters).
fn request_json(op: &str, bytes: &[u8]) -> Result<Value, ApiError> {
    let input: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(bytes)
            .map_err(|e| ApiError::Serialization(format!("the body is not JSON: {e}")))?
    };
    // The secret store's handlers check their own members (ECS's model
    // does not hold SSM's or Secrets Manager's shapes).
    if ops::secret_store::handler(op).is_none() {
        wire::check_request(op, &input)?;
    }
    Ok(input)
}

/// The whole body, refused over `max` (by its Content-Length before
/// reading, or while reading one without).
async fn read_body(
    parts: &http::request::Parts,
    body: Body,
    max: usize,
) -> Result<Bytes, ApiError> {
    let too_large = || ApiError::TooLarge(format!("the request body is over {max} bytes"));
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut body = body;
    let mut buf = Vec::new();
    let mut over = declared.is_some_and(|n| n > max as u64);
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::Serialization(format!("read the request body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen > max {
            over = true;
        }
        if over {
            // Read on (and drop) so the client reads the 413, up to a
            // bound; past it the connection just closes.
            buf = Vec::new();
            if seen > max.saturating_mul(DISCARD_FACTOR) {
                break;
            }
            continue;
        }
        buf.extend_from_slice(&data);
    }
    if over {
        return Err(too_large());
    }
    Ok(Bytes::from(buf))
}

fn respond(status: StatusCode, id: &str, body: &Value) -> Response {
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_1_1));
    if let Ok(v) = HeaderValue::from_str(id) {
        h.insert("x-amzn-requestid", v);
    }
    // The Go SDK reads the error type from this header too: it must be
    // the body's `__type`.
    if let Some(t) = body.get("__type").and_then(Value::as_str) {
        if let Ok(v) = HeaderValue::from_str(t) {
            h.insert("x-amzn-errortype", v);
        }
    }
    resp
}

/// Request ids in UUID form: a random prefix for this server and a count,
/// so ids never repeat and cost no system call.
struct RequestIds {
    prefix: String,
    count: AtomicU64,
}

impl RequestIds {
    fn new() -> Self {
        let hex = berth_orchestrator::host::random_hex32()
            .unwrap_or_else(|_| format!("{:032x}", std::process::id()));
        Self {
            prefix: hex[..16].to_string(),
            count: AtomicU64::new(1),
        }
    }

    fn next(&self) -> String {
        let n = self.count.fetch_add(1, Ordering::Relaxed);
        let p = &self.prefix;
        format!(
            "{}-{}-{}-{}-{:012x}",
            &p[..8],
            &p[8..12],
            &p[12..16],
            format_args!("{:04x}", (n >> 48) & 0xffff),
            n & 0xffff_ffff_ffff
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_look_like_uuids_and_never_repeat() {
        let ids = RequestIds::new();
        let a = ids.next();
        let b = ids.next();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36, "{a}");
        assert_eq!(a.matches('-').count(), 4, "{a}");
    }

    #[test]
    fn bodies_are_json_checked_against_the_model() {
        assert_eq!(
            request_json("ListClusters", b"").unwrap(),
            serde_json::json!({})
        );
        let e = request_json("ListClusters", b"{not json").unwrap_err();
        assert_eq!(e.type_name(), "SerializationException");
        let e = request_json("ListClusters", br#"{"bogus": 1}"#).unwrap_err();
        assert_eq!(e.type_name(), "InvalidParameterException");
    }
}
