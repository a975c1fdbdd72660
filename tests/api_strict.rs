//! The strict model validator the API tests lean on (tests/api/strict.py)
//! is itself tested: good bodies pass, each kind of bad body is caught with
//! its JSON path, and its boto3 hook catches a bad answer from a stub on
//! loopback. Needs the venv `make api-deps` makes (boto3, botocore's model).

use std::path::PathBuf;
use std::process::Command;

/// The virtualenv with boto3: `BERTH_TEST_VENV`, or `<repo>/.build/venv`.
fn venv_python() -> PathBuf {
    let venv = std::env::var_os("BERTH_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.build/venv")));
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make api-deps` (it makes the venv with boto3)",
        python.display()
    );
    python
}

#[test]
fn strict_validator_catches_what_strict_sdks_refuse() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/api/test_strict.py");
    let out = Command::new(venv_python())
        .arg(script)
        .output()
        .expect("run tests/api/test_strict.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "test_strict.py failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(" 0 failed"), "unexpected output:\n{stdout}");
}
