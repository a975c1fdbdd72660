//! `server_config` on PEM files made once with the openssl CLI
//! (`testdata/`: a CA, an EC P-256 certificate it issued for 127.0.0.1 and its key,
//! another EC key, an RSA certificate with a PKCS#1 key), and a real
//! handshake in memory against a client trusting the certificate.

use super::*;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConnection};

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/testdata")
        .join(name)
}

fn message(cert: &str, key: &str) -> String {
    server_config(&testdata(cert), &testdata(key))
        .unwrap_err()
        .to_string()
}

#[test]
fn ec_and_rsa_pairs_load() {
    server_config(&testdata("cert.pem"), &testdata("key.pem")).unwrap();
    server_config(&testdata("rsa_cert.pem"), &testdata("rsa_key.pem")).unwrap();
}

#[test]
fn bad_files_are_named() {
    let m = message("cert.pem", "other_key.pem");
    assert!(
        m.contains("is not the key of")
            && m.contains("other_key.pem")
            && m.contains("does not match"),
        "{m}"
    );
    let m = message("cert.pem", "rsa_key.pem");
    assert!(m.contains("is not the key of"), "{m}");
    let m = message("nope.pem", "key.pem");
    assert!(m.contains("nope.pem") && m.contains("No such file"), "{m}");
    let m = message("cert.pem", "nope.pem");
    assert!(m.contains("nope.pem"), "{m}");
    // The files swapped: a key where the certificate goes and back.
    let m = message("key.pem", "cert.pem");
    assert!(
        m.contains("--tls-cert")
            && m.contains("key.pem")
            && m.contains("no -----BEGIN CERTIFICATE"),
        "{m}"
    );
    let m = message("cert.pem", "cert.pem");
    assert!(
        m.contains("--tls-key") && m.contains("no -----BEGIN PRIVATE KEY"),
        "{m}"
    );

    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let m = server_config(&garbage, &testdata("key.pem"))
        .unwrap_err()
        .to_string();
    assert!(m.contains("garbage.pem"), "{m}");
    let huge = dir.path().join("huge.pem");
    std::fs::write(&huge, vec![b'A'; MAX_PEM_BYTES as usize + 1]).unwrap();
    let m = server_config(&huge, &testdata("key.pem"))
        .unwrap_err()
        .to_string();
    assert!(m.contains("huge.pem") && m.contains("over"), "{m}");
}

#[test]
fn a_client_trusting_the_certificate_completes_a_handshake() {
    let server_cfg = server_config(&testdata("cert.pem"), &testdata("key.pem")).unwrap();
    let mut roots = RootCertStore::empty();
    let ca = std::fs::read(testdata("ca.pem")).unwrap();
    for cert in CertificateDer::pem_slice_iter(&ca) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client_cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut client = ClientConnection::new(Arc::new(client_cfg), name).unwrap();
    let mut server = ServerConnection::new(server_cfg).unwrap();
    for _ in 0..10 {
        if !client.is_handshaking() && !server.is_handshaking() {
            return;
        }
        let mut wire = Vec::new();
        client.write_tls(&mut wire).unwrap();
        server.read_tls(&mut wire.as_slice()).unwrap();
        server.process_new_packets().unwrap();
        let mut back = Vec::new();
        server.write_tls(&mut back).unwrap();
        client.read_tls(&mut back.as_slice()).unwrap();
        client.process_new_packets().unwrap();
    }
    panic!("the handshake did not complete");
}
