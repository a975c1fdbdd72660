//! Running a role's `credential_process`: `/bin/sh -c <command>` in its
//! own process group, killed with its children once its timeout passes, so
//! that the one serving thread waits no longer than that.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// More output than this is no credential_process answer.
const MAX_OUTPUT: u64 = 64 * 1024;
/// How often a running command is looked at.
const POLL: Duration = Duration::from_millis(5);

/// The command's stdout once it exited 0 within `timeout`; otherwise why
/// not (its exit status and the start of its stderr).
pub fn run(command: &str, timeout: Duration) -> Result<String, String> {
    let mut child = Command::new("/bin/sh")
        .args(["-c", command])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("credential_process {command:?}: {e}"))?;
    // Read both pipes while it runs: a full pipe would stall it.
    let out = child.stdout.take().map(drain);
    let err = child.stderr.take().map(drain);
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL),
            Ok(None) => {
                kill_group(child.id());
                let _ = child.wait();
                return Err(format!(
                    "credential_process {command:?}: no answer within {}s",
                    timeout.as_secs()
                ));
            }
            Err(e) => return Err(format!("credential_process {command:?}: {e}")),
        }
    };
    let out = out.and_then(|h| h.join().ok()).unwrap_or_default();
    let err = err.and_then(|h| h.join().ok()).unwrap_or_default();
    if !status.success() {
        let err: String = err.trim().chars().take(200).collect();
        return Err(format!("credential_process {command:?}: {status}: {err}"));
    }
    Ok(out)
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = (&mut pipe).take(MAX_OUTPUT).read_to_end(&mut bytes);
        // The rest is dropped unread, so that the command does not block.
        let _ = std::io::copy(&mut pipe, &mut std::io::sink());
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// The command and whatever it started: its group, made at spawn.
fn kill_group(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_answers_fails_or_is_cut_short() {
        let second = Duration::from_secs(5);
        assert_eq!(run("echo '{}'", second).unwrap(), "{}\n");
        let e = run("echo oops >&2; exit 3", second).unwrap_err();
        assert!(e.contains("exit status: 3") && e.contains("oops"), "{e}");
        let e = run("sleep 30 & sleep 30", Duration::from_millis(200)).unwrap_err();
        assert!(e.contains("no answer within"), "{e}");
    }
}
