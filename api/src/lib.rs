//! ECS's HTTP API over berth's orchestrator: `aws ecs … --endpoint-url`,
//! boto3 and Terraform drive the same clusters, tasks and services the
//! CLI does, through the same [`berth_orchestrator::Ecs`].
//!
//! One request, file by file:
//! - `server.rs`: the listener (TCP, or TLS from `tls.rs`), the body
//!   limit, the request id, a clean stop on SIGTERM; each call runs on a
//!   blocking thread, as the orchestrator's calls block.
//! - `auth/`: who may call: anyone (the default, as local emulators do),
//!   or SigV4 signatures checked against local access keys.
//! - `protocol.rs`: AWS JSON 1.1: the `X-Amz-Target` header, the error
//!   body (`__type`, `message`) and its status (400, 500 only for
//!   ServerException, which SDKs retry).
//! - `ops/`: one file per resource; `ops/mod.rs` is the flat table from
//!   operation name to handler. A handler reads the model's request
//!   shape, calls the orchestrator, and answers the model's response.
//! - `wire.rs`: ECS values as the model puts them on the wire: timestamps
//!   as epoch seconds, berth's own fields left out.
//! - `paging.rs`: `maxResults` and `nextToken` on the List operations.

pub mod auth;
pub mod ops;
pub mod paging;
pub mod protocol;
pub mod server;
pub mod tls;
pub mod wire;
