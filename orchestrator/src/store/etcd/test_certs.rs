//! Certificates for TLS tests, made by the `openssl` CLI in a temporary
//! dir (removed on drop): a CA, a server certificate for 127.0.0.1 and a
//! client certificate it signed, and a second CA that signed nothing of
//! them (the wrong one).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::test_server::ServerTls;

pub struct TestCerts {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A CA of its own: trusting it instead of `ca` must fail.
    pub other_ca: PathBuf,
    dir: tempfile::TempDir,
}

/// Run `openssl ARGS` in `dir`; panics with its stderr when it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed CA `name`.pem with its key.
#[rustfmt::skip]
fn ca(dir: &Path, name: &str) {
    let (key, pem) = (format!("{name}.key"), format!("{name}.pem"));
    openssl(
        dir,
        &[
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", &key, "-out", &pem, "-days", "2", "-subj",
            &format!("/CN=berth test {name}"),
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// `name`.pem and `name`.key, signed by ca.pem, with `extensions`.
#[rustfmt::skip]
fn leaf(dir: &Path, name: &str, extensions: &str) {
    let (key, csr, pem, ext) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
        format!("{name}.ext"),
    );
    std::fs::write(dir.join(&ext), extensions).expect("write extensions");
    openssl(
        dir,
        &[
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", &key, "-out", &csr, "-subj", &format!("/CN=berth test {name}"),
        ],
    );
    openssl(
        dir,
        &[
            "x509", "-req", "-in", &csr, "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", &pem, "-days", "2", "-extfile", &ext,
        ],
    );
}

impl TestCerts {
    pub fn make() -> Self {
        let dir = tempfile::tempdir().expect("a dir for certificates");
        let d = dir.path();
        ca(d, "ca");
        ca(d, "other-ca");
        leaf(
            d,
            "server",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n",
        );
        leaf(d, "client", "extendedKeyUsage=clientAuth\n");
        TestCerts {
            ca: d.join("ca.pem"),
            server_cert: d.join("server.pem"),
            server_key: d.join("server.key"),
            client_cert: d.join("client.pem"),
            client_key: d.join("client.key"),
            other_ca: d.join("other-ca.pem"),
            dir,
        }
    }

    /// What an etcd member of these certificates is started with.
    pub fn server(&self) -> ServerTls {
        ServerTls {
            ca: self.ca.clone(),
            cert: self.server_cert.clone(),
            key: self.server_key.clone(),
            client_cert: self.client_cert.clone(),
            client_key: self.client_key.clone(),
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
