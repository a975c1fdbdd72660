//! OCI images for berth, after containerd's seams: a content store of
//! verified blobs and references, importers that fill it, an unpacker that
//! turns layers into read-only directories (never writing outside them),
//! and a snapshotter that gives each container an overlayfs root.
//!
//! Knows nothing of containers' processes or of ECS.

pub mod build_image;
pub mod digest;
mod error;
pub mod export;
pub mod image;
pub mod images;
pub mod import;
pub mod limits;
pub mod progress;
pub mod pull;
pub mod reference;
pub mod snapshot;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod unpack;

pub use digest::Digest;
pub use error::{Error, Result};
pub use limits::UnpackLimits;
pub use reference::Reference;
pub use store::ContentStore;
