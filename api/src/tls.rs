//! HTTPS for `berth serve --tls-cert F --tls-key F`: a rustls server
//! config (ring, as the rest of berth uses) from PEM files.
//!
//! The certificate file holds the server's certificate first, then any
//! intermediates (what `openssl req -x509` or an ACME client writes); the
//! key file holds one PKCS#8, PKCS#1 (RSA) or SEC1 (EC) private key. The
//! key must be the certificate's: rustls checks, and the error says so
//! rather than failing every handshake later.

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A PEM file larger than this is not a certificate chain or a key.
const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// Why HTTPS cannot be served; every message names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    // `io`, not `source`: the message carries it once, not twice in a chain.
    #[error("{flag} {}: {io}", path.display())]
    Io {
        flag: &'static str,
        path: PathBuf,
        io: std::io::Error,
    },
    #[error("{flag} {}: over {MAX_PEM_BYTES} bytes, not a PEM certificate or key", path.display())]
    TooLarge { flag: &'static str, path: PathBuf },
    #[error("--tls-cert {}: not a PEM certificate chain: {reason}", path.display())]
    BadCertificate { path: PathBuf, reason: String },
    #[error("--tls-key {}: not a PEM private key (PKCS#8, RSA or EC): {reason}", path.display())]
    BadKey { path: PathBuf, reason: String },
    #[error("--tls-key {} is not the key of --tls-cert {}: {reason}", key.display(), cert.display())]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

/// The server config for HTTPS with this certificate chain and key.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = certificates(cert)?;
    let private = private_key(key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| mismatch(cert, key, e))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| mismatch(cert, key, e))?;
    // The server speaks HTTP/1.1 (what every AWS SDK sends to this API).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn mismatch(cert: &Path, key: &Path, e: rustls::Error) -> TlsError {
    let reason = match e {
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
            "the private key does not match the certificate's public key".to_string()
        }
        other => other.to_string(),
    };
    TlsError::Mismatch {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        reason,
    }
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read("--tls-cert", path)?;
    let bad = |reason: String| TlsError::BadCertificate {
        path: path.to_path_buf(),
        reason,
    };
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, pem::Error>>()
        .map_err(|e| bad(e.to_string()))?;
    if chain.is_empty() {
        return Err(bad("no -----BEGIN CERTIFICATE----- block".into()));
    }
    Ok(chain)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read("--tls-key", path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| TlsError::BadKey {
        path: path.to_path_buf(),
        reason: match e {
            pem::Error::NoItemsFound => "no -----BEGIN PRIVATE KEY----- block".into(),
            other => other.to_string(),
        },
    })
}

/// The file `flag` names (`--tls-cert` or `--tls-key`), bounded.
fn read(flag: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    let io = |io| TlsError::Io {
        flag,
        path: path.to_path_buf(),
        io,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(TlsError::TooLarge {
            flag,
            path: path.to_path_buf(),
        });
    }
    Ok(bytes)
}

/// The first byte of every TLS connection: a handshake record's type.
const HANDSHAKE_RECORD: u8 = 0x16;

/// Whether a client on the HTTPS port speaks plain HTTP (its first byte
/// is not a TLS record's), so it can be told so rather than cut off.
pub async fn speaks_plaintext(stream: &TcpStream) -> bool {
    let mut first = [0u8; 1];
    matches!(stream.peek(&mut first).await, Ok(1) if first[0] != HANDSHAKE_RECORD)
}

/// Answers a plain-HTTP request on the HTTPS port with a 400 naming the
/// https:// URL, then closes. The request is drained (up to a bound and a
/// second) after answering, so closing does not reset the connection
/// before the client reads the answer.
pub async fn refuse_plaintext(mut stream: TcpStream, local: SocketAddr) {
    let body = format!(
        r#"{{"__type":"ClientException","message":"berth serve speaks HTTPS on this port: use https://{local}/"}}"#
    );
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\n\
         X-Amzn-ErrorType: ClientException\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    if stream.write_all(answer.as_bytes()).await.is_err() || stream.shutdown().await.is_err() {
        return;
    }
    let mut sink = [0u8; 4096];
    let drain = async {
        let mut left = 64 * 1024usize;
        while let Ok(n @ 1..) = stream.read(&mut sink).await {
            left = left.saturating_sub(n);
            if left == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
