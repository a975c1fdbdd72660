//! The runtime end to end: real containers through the real `berth` binary.

use std::process::{Command, Stdio};
use std::time::Duration;

use berth_runtime::cgroups::{self, CgroupLayout};
use berth_runtime::Resources;
use berth_tests::{assert_ok, parse_json, patience, stderr, stdout, World};

fn code(out: &std::process::Output) -> Option<i32> {
    out.status.code()
}

#[test]
fn exit_codes_come_back() {
    let w = World::new("exit");
    assert_eq!(code(&w.run(&[], &["true"])), Some(0));
    assert_eq!(code(&w.run(&[], &["sh", "-c", "exit 3"])), Some(3));
    // A signal death is 128+N, whether a child's reported by the shell or
    // the container's own init killed from outside.
    assert_eq!(
        code(&w.run(&[], &["sh", "-c", "sh -c 'kill -9 $$'; exit $?"])),
        Some(137)
    );
    w.run_detached("victim", &[], &["sleep", "60"]);
    assert_ok(&w.berth(&["runtime", "kill", "victim", "KILL"]));
    let state = w.wait_for("victim", "exit", |s| !s["exit"].is_null());
    assert_eq!(state["exit"]["exitCode"], 137);
    assert_eq!(state["exit"]["signal"], "SIGKILL");
    w.delete("victim");
    w.assert_clean();
}

#[test]
fn output_passes_through_and_lands_in_the_log() {
    let w = World::new("logs");
    let out = w.run(
        &["--keep", "--id", "c"],
        &["sh", "-c", "echo to-out; echo to-err >&2"],
    );
    assert_ok(&out);
    assert_eq!(stdout(&out), "to-out\n");
    assert!(stderr(&out).contains("to-err"), "{}", stderr(&out));
    let logs = w.berth(&["runtime", "logs", "--json", "c"]);
    assert_ok(&logs);
    let entries: Vec<serde_json::Value> = stdout(&logs)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let find = |stream: &str| {
        entries
            .iter()
            .find(|e| e["stream"] == stream)
            .unwrap_or_else(|| panic!("no {stream} entry in {entries:?}"))
            .clone()
    };
    assert_eq!(find("stdout")["log"], "to-out\n");
    assert_eq!(find("stderr")["log"], "to-err\n");
    assert!(find("stdout")["time"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));
    w.delete("c");
    w.assert_clean();
}

#[test]
fn logs_rotate_by_size() {
    let w = World::new("rotate");
    let out = w.run(
        &[
            "--keep",
            "--id",
            "r",
            "--log-max-size",
            "2000",
            "--log-max-files",
            "2",
        ],
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); done",
        ],
    );
    assert_ok(&out);
    let log = std::path::PathBuf::from(w.state("r")["logPath"].as_str().expect("logPath"));
    let rotated = log.with_extension("log.1");
    assert!(rotated.exists(), "{} missing", rotated.display());
    assert!(!log.with_extension("log.2").exists());
    for f in [&log, &rotated] {
        assert!(std::fs::metadata(f).expect("log").len() <= 2000);
    }
    let text = stdout(&w.berth(&["runtime", "logs", "r"]));
    assert!(text.ends_with("line-199\n"), "{text}");
    assert!(!text.contains("line-0\n"), "oldest lines are rotated away");
    w.delete("r");
    w.assert_clean();
}

#[test]
fn env_cwd_user_and_hostname_apply() {
    let w = World::new("process");
    let out = w.run(
        &[
            "--env",
            "GREETING=hi there",
            "--workdir",
            "/tmp",
            "--user",
            "app",
            "--hostname",
            "box1",
        ],
        &[
            "sh",
            "-c",
            "echo \"$GREETING|$(pwd)|$(id -u):$(id -g):$(id -G)|$(hostname)|$HOME\"",
        ],
    );
    assert_ok(&out);
    assert_eq!(
        stdout(&out).trim(),
        "hi there|/tmp|1000:1000:1000 50|box1|/home/app"
    );
    let out = w.run(&["--user", "33:50"], &["id"]);
    assert_eq!(stdout(&out).trim(), "uid=33(www-data) gid=50(staff)");
    w.assert_clean();
}

#[test]
fn memory_limit_oom_kills_and_is_reported() {
    let w = World::new("oom");
    let out = w.run(
        &["--keep", "--id", "hog", "--memory", "16"],
        &["sh", "-c", "x=a; while true; do x=$x$x; done"],
    );
    assert_eq!(code(&out), Some(137), "{}", stderr(&out));
    let exit = &w.state("hog")["exit"];
    assert_eq!(exit["oomKilled"], true, "{exit}");
    assert_eq!(exit["signal"], "SIGKILL");
    w.delete("hog");

    // A container that stays under its limit is not reported as OOM.
    let out = w.run(&["--keep", "--id", "fine", "--memory", "64"], &["true"]);
    assert_ok(&out);
    assert_eq!(w.state("fine")["exit"]["oomKilled"], false);
    w.delete("fine");
    w.assert_clean();
}

#[test]
fn pids_limit_stops_a_fork_bomb() {
    let w = World::new("pids");
    let out = w.run(
        &["--pids", "20"],
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 60 ]; do sleep 30 & i=$((i+1)); done; echo forked-all",
        ],
    );
    assert!(stderr(&out).contains("can't fork"), "{}", stderr(&out));
    assert!(!stdout(&out).contains("forked-all"));
    w.assert_clean();
}

#[test]
fn resources_are_written_to_the_cgroup() {
    let w = World::new("cgroup");
    let resources = Resources {
        cpu_units: Some(512),
        cpus: Some(0.5),
        memory_mib: Some(64),
        memory_reservation_mib: Some(32),
        pids_limit: Some(50),
    };
    let state = w.run_detached(
        "res",
        &[
            "--cpu",
            "512",
            "--cpus",
            "0.5",
            "--memory",
            "64",
            "--memory-reservation",
            "32",
            "--pids",
            "50",
        ],
        &["sleep", "60"],
    );
    let path = state["cgroupsPath"]
        .as_str()
        .expect("cgroupsPath")
        .to_string();
    assert_eq!(path, format!("/{}/res", w.cgroup_parent));
    let layout = cgroups::layout();
    let settings = resources.cgroup_settings(layout);
    assert!(settings
        .iter()
        .any(|s| s.file.contains("quota") || s.file == "cpu.max"));
    for s in settings {
        let file = cgroups::dir_of(layout, s.controller, &path).join(s.file);
        let got =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert_eq!(got.trim(), s.value, "{}", file.display());
    }
    if layout == CgroupLayout::V1 {
        let quota = cgroups::dir_of(layout, "cpu", &path).join("cpu.cfs_quota_us");
        assert_eq!(
            std::fs::read_to_string(quota).expect("quota").trim(),
            "50000"
        );
    }
    w.delete_force("res");
    w.assert_clean();
}

#[test]
fn read_only_root_refuses_writes() {
    let w = World::new("ro");
    let out = w.run(
        &["--read-only", "--tmpfs", "/scratch"],
        &["sh", "-c", "touch /x"],
    );
    assert_ne!(code(&out), Some(0));
    assert!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        stderr(&out)
    );
    let out = w.run(
        &["--read-only", "--tmpfs", "/scratch"],
        &["sh", "-c", "touch /scratch/x && echo ok"],
    );
    assert_eq!(stdout(&out).trim(), "ok", "{}", stderr(&out));
    w.assert_clean();
}

#[test]
fn default_container_is_confined() {
    let w = World::new("confined");
    let out = w.run(
        &[],
        &["sh", "-c", "ip link add b0 type bridge && echo LINK-ADDED"],
    );
    assert!(!stdout(&out).contains("LINK-ADDED"));
    assert!(
        stderr(&out).contains("Operation not permitted"),
        "{}",
        stderr(&out)
    );
    let out = w.run(
        &[],
        &["sh", "-c", "mount -t tmpfs none /mnt && echo MOUNTED"],
    );
    assert!(!stdout(&out).contains("MOUNTED"));
    let out = w.run(&[], &["sh", "-c", "head -c 16 /proc/kcore | wc -c"]);
    assert_eq!(stdout(&out).trim(), "0");
    let out = w.run(
        &[],
        &[
            "sh",
            "-c",
            "echo 1 > /proc/sys/kernel/ns_last_pid && echo WROTE",
        ],
    );
    assert!(!stdout(&out).contains("WROTE"));
    // seccomp: no new namespaces from inside.
    let out = w.run(&[], &["sh", "-c", "unshare -n true && echo UNSHARED"]);
    assert!(!stdout(&out).contains("UNSHARED"), "{}", stderr(&out));
    let out = w.run(
        &[],
        &["sh", "-c", "grep -E '^(Seccomp|CapEff):' /proc/self/status"],
    );
    let status = stdout(&out);
    assert!(status.contains("Seccomp:\t2"), "{status}");
    assert!(
        status.contains("CapEff:\t00000000a80425fb"),
        "Docker's 14 default caps: {status}"
    );
    // The same commands work when privileged: the confinement is berth's.
    let out = w.run(
        &["--privileged"],
        &["sh", "-c", "ip link add b0 type bridge && echo LINK-ADDED"],
    );
    assert!(stdout(&out).contains("LINK-ADDED"), "{}", stderr(&out));
    w.assert_clean();
}

#[test]
fn no_new_privileges_and_caps() {
    let w = World::new("nnp");
    let out = w.run(
        &["--no-new-privileges", "--cap-drop", "ALL", "--cap-add", "NET_ADMIN"],
        &["sh", "-c", "grep -E '^(NoNewPrivs|CapEff):' /proc/self/status; ip link add b0 type bridge && echo ADDED"],
    );
    let text = stdout(&out);
    assert!(text.contains("NoNewPrivs:\t1"), "{text}");
    assert!(text.contains("CapEff:\t0000000000001000"), "{text}");
    assert!(text.contains("ADDED"), "{text} {}", stderr(&out));
    w.assert_clean();
}

#[test]
fn exec_returns_its_exit_code_and_output() {
    let w = World::new("exec");
    w.run_detached("svc", &["--user", "app"], &["sleep", "60"]);
    let out = w.berth(&[
        "runtime",
        "exec",
        "svc",
        "--",
        "sh",
        "-c",
        "id -u; echo oops >&2; exit 5",
    ]);
    assert_eq!(code(&out), Some(5));
    assert_eq!(
        stdout(&out).trim(),
        "1000",
        "exec runs as the container's user"
    );
    assert_eq!(stderr(&out).trim(), "oops");
    let out = w.berth(&[
        "runtime",
        "exec",
        "--user",
        "root",
        "--env",
        "A=b",
        "--cwd",
        "/tmp",
        "svc",
        "--",
        "sh",
        "-c",
        "echo $(id -u) $A $(pwd)",
    ]);
    assert_ok(&out);
    assert_eq!(stdout(&out).trim(), "0 b /tmp");
    // exec shares the container's namespaces.
    let ns = |args: &[&str]| stdout(&w.berth(args)).trim().to_string();
    let pid1 = ns(&[
        "runtime",
        "exec",
        "svc",
        "--",
        "sh",
        "-c",
        "cat /proc/1/cmdline | tr '\\0' ' '",
    ]);
    assert_eq!(pid1, "sleep 60");
    w.delete_force("svc");
    w.assert_clean();
}

#[test]
fn killing_the_cli_leaves_the_container_running() {
    let w = World::new("cli-kill");
    let mut child = w
        .command()
        .args(w.run_args(
            &["--id", "fg"],
            &[
                "sh",
                "-c",
                "trap 'exit 0' TERM; while true; do sleep 0.1; done",
            ],
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn berth");
    w.wait_for("fg", "running", |s| s["status"] == "running");
    child.kill().expect("SIGKILL the CLI");
    child.wait().expect("reap CLI");
    std::thread::sleep(Duration::from_millis(200));
    let state = w.state("fg");
    assert_eq!(state["status"], "running", "{state}");
    assert_eq!(state["monitor"]["alive"], true);
    assert_eq!(state["orphaned"], false);
    let out = w.berth(&["runtime", "stop", "--time", "5", "fg"]);
    assert_ok(&out);
    let outcome = parse_json(&out);
    assert_eq!(outcome["killed"], false, "{outcome}");
    assert_eq!(outcome["exit"]["exitCode"], 0, "{outcome}");
    w.delete("fg");
    w.assert_clean();
}

#[test]
fn killing_the_monitor_orphans_the_container() {
    let w = World::new("orphan");
    let state = w.run_detached("orph", &[], &["sleep", "60"]);
    let monitor = state["monitor"]["pid"].as_i64().expect("monitor pid");
    let pid = state["pid"].as_i64().expect("pid");
    Command::new("kill")
        .args(["-9", &monitor.to_string()])
        .status()
        .expect("kill");
    let state = w.wait_for("orph", "orphaned", |s| s["orphaned"] == true);
    assert_eq!(state["status"], "running");
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    let out = w.berth(&["runtime", "delete", "orph"]);
    assert!(!out.status.success(), "a running container needs --force");
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    w.delete_force("orph");
    // Reaped by init once the container is gone.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.contains(") Z ") || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    w.assert_clean();
}

/// Wait until container `id` has logged "ready" (its traps are set).
fn wait_for_ready(w: &World, id: &str) {
    let deadline = std::time::Instant::now() + patience(10);
    while !stdout(&w.berth(&["runtime", "logs", id])).contains("ready\n") {
        assert!(
            std::time::Instant::now() < deadline,
            "{id} never logged ready"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn stop_escalates_to_sigkill_after_the_timeout() {
    let w = World::new("stop");
    w.run_detached(
        "stubborn",
        &[],
        &[
            "sh",
            "-c",
            "trap '' TERM; echo ready; while true; do sleep 0.1; done",
        ],
    );
    wait_for_ready(&w, "stubborn");
    let out = w.berth(&["runtime", "stop", "--time", "1", "stubborn"]);
    assert_ok(&out);
    let outcome = parse_json(&out);
    assert_eq!(outcome["killed"], true, "{outcome}");
    assert_eq!(outcome["exit"]["exitCode"], 137);

    // A container that honours its stop signal is not killed.
    w.run_detached(
        "polite",
        &["--stop-signal", "SIGUSR1"],
        &[
            "sh",
            "-c",
            "trap 'exit 0' USR1; echo ready; while true; do sleep 0.1; done",
        ],
    );
    // A signal sent before the trap is set would be ignored (the shell is
    // its pid namespace's init), and the stop would end in SIGKILL.
    wait_for_ready(&w, "polite");
    let out = w.berth(&["runtime", "stop", "--time", "10", "polite"]);
    assert_ok(&out);
    let outcome = parse_json(&out);
    assert_eq!(outcome["killed"], false, "{outcome}");
    assert_eq!(outcome["exit"]["exitCode"], 0);
    for id in ["stubborn", "polite"] {
        w.delete(id);
    }
    w.assert_clean();
}

#[test]
fn create_start_state_delete_over_a_bundle() {
    let w = World::new("bundle");
    let bundle = tempfile::tempdir().expect("bundle");
    let config = serde_json::json!({
        "ociVersion": "1.0.2",
        "root": { "path": w.rootfs() },
        "process": { "args": ["sh", "-c", "echo from-bundle; exit 7"], "cwd": "/", "user": { "uid": 0, "gid": 0 }, "env": ["PATH=/bin"] },
        "mounts": [{ "destination": "/proc", "type": "proc", "source": "proc" }, { "destination": "/dev", "type": "tmpfs", "source": "tmpfs" }],
        "linux": { "namespaces": [{ "type": "pid" }, { "type": "mount" }, { "type": "ipc" }, { "type": "uts" }, { "type": "network" }] }
    });
    std::fs::write(bundle.path().join("config.json"), config.to_string()).expect("config");
    let bundle_arg = bundle.path().display().to_string();
    let out = w.berth(&[
        "runtime",
        "create",
        "--bundle",
        &bundle_arg,
        "--cgroup-parent",
        &w.cgroup_parent,
        "b1",
    ]);
    assert_ok(&out);
    assert_eq!(parse_json(&out)["status"], "created");
    assert_eq!(w.state("b1")["status"], "created");
    let dup = w.berth(&[
        "runtime",
        "create",
        "--bundle",
        &bundle_arg,
        "--cgroup-parent",
        &w.cgroup_parent,
        "b1",
    ]);
    assert!(stderr(&dup).contains("already exists"), "{}", stderr(&dup));
    assert_eq!(
        w.state("b1")["status"],
        "created",
        "a duplicate leaves the first alone"
    );
    assert_ok(&w.berth(&["runtime", "start", "b1"]));
    let out = w.berth(&["runtime", "wait", "b1"]);
    assert_ok(&out);
    let state = parse_json(&out);
    assert_eq!(state["status"], "stopped");
    assert_eq!(state["exit"]["exitCode"], 7);
    assert!(state["exit"]["startedAt"].is_string());
    assert_eq!(
        stdout(&w.berth(&["runtime", "logs", "b1"])),
        "from-bundle\n"
    );
    w.delete("b1");
    w.assert_clean();
}

#[test]
fn containers_can_share_a_network_namespace() {
    let w = World::new("netns");
    let first = w.run_detached("first", &[], &["sleep", "60"]);
    let pid = first["pid"].as_i64().expect("pid");
    let ns_path = format!("/proc/{pid}/ns/net");
    let want = std::fs::read_link(&ns_path).expect("netns link");
    let out = w.run(&["--net-ns", &ns_path], &["readlink", "/proc/self/ns/net"]);
    assert_eq!(stdout(&out).trim(), want.display().to_string());
    let out = w.run(&[], &["readlink", "/proc/self/ns/net"]);
    assert_ne!(stdout(&out).trim(), want.display().to_string());
    w.delete_force("first");
    w.assert_clean();
}

#[test]
fn bad_input_is_refused_and_leaves_nothing() {
    let w = World::new("bad");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "runtime",
                "run",
                "--rootfs",
                "/nonexistent/rootfs",
                "--",
                "true",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            "/nonexistent/rootfs",
        ),
        (w.run_args(&["--id", "x"], &[]), "args"),
        (w.run_args(&["--user", "ghost"], &["true"]), "ghost"),
        (
            w.run_args(&["--id", "bad/id"], &["true"]),
            "invalid container id",
        ),
        (w.run_args(&["--cap-add", "FLYING"], &["true"]), "FLYING"),
        (w.run_args(&["--env", "NOEQUALS"], &["true"]), "env[0]"),
        (w.run_args(&[], &["/bin/no-such-binary"]), "no-such-binary"),
    ];
    for (args, needle) in cases {
        let out = w.command().args(&args).output().expect("berth");
        assert!(!out.status.success(), "{args:?} should fail");
        let err = stderr(&out);
        assert!(
            err.contains(needle),
            "{args:?}: error should name {needle:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        w.assert_clean();
    }
    // A duplicate id is refused without touching the first container.
    w.run_detached("dup", &[], &["sleep", "60"]);
    let out = w.run(&["--id", "dup"], &["true"]);
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(w.state("dup")["status"], "running");
    w.delete_force("dup");
    let out = w.berth(&["runtime", "state", "nope"]);
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));
    let out = w.berth(&["runtime", "delete", "nope"]);
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));
    w.assert_clean();
}

#[test]
fn delete_cleans_a_half_created_container() {
    let w = World::new("half");
    // Leave a container as a crash would: created, then its monitor killed
    // before the process ever started.
    let bundle_state = w.run(&["--keep", "--id", "tmpl"], &["true"]);
    assert_ok(&bundle_state);
    w.delete("tmpl");
    let out = w.berth(&[
        "runtime",
        "create",
        "--cgroup-parent",
        &w.cgroup_parent,
        "--bundle",
        &make_bundle(&w),
        "half",
    ]);
    assert_ok(&out);
    let state = parse_json(&out);
    let monitor = state["monitor"]["pid"].as_i64().expect("monitor");
    Command::new("kill")
        .args(["-9", &monitor.to_string()])
        .status()
        .expect("kill");
    // And remove libcontainer's record, as if the crash came mid-create.
    let lc = w.root.path().join("run/libcontainer/half");
    let state = w.wait_for("half", "orphaned", |s| s["monitor"]["alive"] == false);
    let _ = state;
    std::fs::remove_dir_all(&lc).expect("remove libcontainer state");
    w.delete_force("half");
    w.assert_clean();
}

fn make_bundle(w: &World) -> String {
    let dir = w.root.path().join("bundle-src");
    std::fs::create_dir_all(&dir).expect("bundle dir");
    let config = serde_json::json!({
        "ociVersion": "1.0.2",
        "root": { "path": w.rootfs() },
        "process": { "args": ["sleep", "60"], "cwd": "/", "user": { "uid": 0, "gid": 0 }, "env": ["PATH=/bin"] },
        "mounts": [{ "destination": "/proc", "type": "proc", "source": "proc" }, { "destination": "/dev", "type": "tmpfs", "source": "tmpfs" }],
        "linux": { "namespaces": [{ "type": "pid" }, { "type": "mount" }, { "type": "ipc" }, { "type": "uts" }, { "type": "network" }] }
    });
    std::fs::write(dir.join("config.json"), config.to_string()).expect("config");
    dir.display().to_string()
}

#[test]
fn signals_to_a_foreground_run_reach_the_container() {
    let w = World::new("sigfwd");
    let child = w
        .command()
        .args(w.run_args(
            &["--id", "fg"],
            &[
                "sh",
                "-c",
                "trap 'echo got-term; exit 4' TERM; while true; do sleep 0.1; done",
            ],
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn berth");
    w.wait_for("fg", "running", |s| s["status"] == "running");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert_eq!(stdout(&out), "got-term\n");
    w.assert_clean();
}

#[test]
fn sysctls_and_bind_mounts_apply() {
    let w = World::new("mounts");
    let host = tempfile::tempdir().expect("host dir");
    std::fs::write(host.path().join("in.txt"), "from-host").expect("write");
    let vol = format!("{}:/data", host.path().display());
    let out = w.run(
        &[
            "--volume",
            &vol,
            "--sysctl",
            "net.ipv4.ip_unprivileged_port_start=80",
        ],
        &[
            "sh",
            "-c",
            "cat /data/in.txt; echo from-container > /data/out.txt; \
             echo; cat /proc/sys/net/ipv4/ip_unprivileged_port_start",
        ],
    );
    assert_ok(&out);
    assert_eq!(stdout(&out), "from-host\n80\n");
    let written = std::fs::read_to_string(host.path().join("out.txt")).expect("out.txt");
    assert_eq!(written, "from-container\n");
    let ro = format!("{}:/data:ro", host.path().display());
    let out = w.run(&["--volume", &ro], &["sh", "-c", "echo x > /data/nope"]);
    assert!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        stderr(&out)
    );
    assert!(!host.path().join("nope").exists());
    w.assert_clean();
}

/// readlink of a process's executable, from the host.
fn exe_of(pid: i64) -> String {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// True when the file behind `/proc/PID/exe` cannot be changed: opening it
/// for write, or writing, or truncating it, fails.
fn exe_is_unwritable(pid: i64) -> bool {
    use std::io::Write;
    match std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/{pid}/exe"))
    {
        Err(_) => true,
        Ok(mut f) => f.write_all(b"\x7fELF").is_err() && f.set_len(0).is_err(),
    }
}

#[test]
fn security_container_init_and_exec_run_from_a_sealed_copy() {
    let w = World::new("sealed");
    // A created container's init is still berth (libcontainer's init, cloned
    // from the monitor), waiting for `start`: what a container could reach
    // through /proc/1/exe. It must be the sealed memfd, not the host binary.
    let out = w.berth(&[
        "runtime",
        "create",
        "--cgroup-parent",
        &w.cgroup_parent,
        "--bundle",
        &make_bundle(&w),
        "c",
    ]);
    assert_ok(&out);
    let state = parse_json(&out);
    let init = state["pid"].as_i64().expect("init pid");
    let monitor = state["monitor"]["pid"].as_i64().expect("monitor pid");
    // The shared copy of the root (a read-only tmpfs, immutable), or a
    // sealed memfd where it cannot be made.
    let shared = w.sealed_copy_dir().display().to_string();
    for pid in [init, monitor] {
        let exe = exe_of(pid);
        assert!(
            exe.starts_with("/memfd:berth") || exe.starts_with(&shared),
            "pid {pid} runs {exe:?}"
        );
        assert!(exe_is_unwritable(pid), "pid {pid}'s executable is writable");
    }
    assert_ok(&w.berth(&["runtime", "start", "c"]));

    // `exec` forks the joining process from the CLI: the CLI has re-executed
    // from the sealed copy by the time the command runs: the one its root
    // shares (no 28 MiB copy of its own per call), as its monitor.
    let mut exec = w
        .command()
        .args([
            "runtime",
            "exec",
            "c",
            "--",
            "sh",
            "-c",
            "echo ready; sleep 30",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn exec");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(exec.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("read exec output");
    assert_eq!(line, "ready\n");
    let cli = i64::from(exec.id());
    let exe = exe_of(cli);
    let same_copy =
        inode_of(&format!("/proc/{cli}/exe")) == inode_of(&format!("/proc/{monitor}/exe"));
    let unwritable = exe_is_unwritable(cli);
    let _ = exec.kill();
    let _ = exec.wait();
    assert!(
        same_copy,
        "the exec CLI runs {exe:?}, not its monitor's copy"
    );
    assert!(unwritable, "the exec CLI's executable is writable");
    w.delete_force("c");
    w.assert_clean();
}

/// (device, inode) of the file behind `path`, /proc links followed.
fn inode_of(path: &str) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("stat {path}: {e}"));
    (meta.dev(), meta.ino())
}

fn monitor_pid(state: &serde_json::Value) -> i64 {
    state["monitor"]["pid"].as_i64().expect("monitor pid")
}

#[test]
fn security_racing_clis_share_one_sealed_copy() {
    let w = World::new("onecopy");
    // Four CLIs at once on a root with no copy yet: the lock makes them
    // agree on one, which all four monitors run.
    let children: Vec<_> = (0..4)
        .map(|i| {
            w.command()
                .args(w.run_args(&["-d", "--id", &format!("c{i}")], &["sleep", "60"]))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn berth")
        })
        .collect();
    let states: Vec<_> = children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().expect("wait for berth");
            assert_ok(&out);
            parse_json(&out)
        })
        .collect();
    let copies = w.sealed_copies();
    assert_eq!(copies.len(), 1, "one shared copy: {copies:?}");
    let exe = format!("{}/berth", copies[0]);
    let copy = inode_of(&exe);
    for state in &states {
        let monitor = monitor_pid(state);
        assert_eq!(
            inode_of(&format!("/proc/{monitor}/exe")),
            copy,
            "monitor {monitor} runs another copy"
        );
        assert!(
            exe_is_unwritable(monitor),
            "monitor {monitor}'s executable is writable"
        );
    }
    // Neither through the mount.
    assert!(std::fs::OpenOptions::new().write(true).open(&exe).is_err());
    for i in 0..4 {
        w.delete_force(&format!("c{i}"));
    }
    w.assert_clean();
    assert_eq!(
        w.sealed_copies(),
        copies,
        "the copy outlives the containers"
    );
}

#[test]
fn security_a_changed_berth_binary_gets_a_new_sealed_copy() {
    let w = World::new("newcopy");
    let old = w.run_detached("old", &[], &["sleep", "60"]);
    let first = w.sealed_copies();
    assert_eq!(first.len(), 1, "{first:?}");
    let old_exe = inode_of(&format!("/proc/{}/exe", monitor_pid(&old)));
    assert_eq!(old_exe, inode_of(&format!("{}/berth", first[0])));
    // An upgraded berth: another file (a new inode and mtime).
    let upgraded = w.root.path().join("berth-upgraded");
    std::fs::copy(berth_tests::berth_bin(), &upgraded).expect("copy berth");
    let out = Command::new(&upgraded)
        .arg("--root")
        .arg(w.root.path())
        .args(w.run_args(&["-d", "--id", "new"], &["sleep", "60"]))
        .stdin(Stdio::null())
        .output()
        .expect("run the upgraded berth");
    assert_ok(&out);
    let new = parse_json(&out);
    let second = w.sealed_copies();
    assert_eq!(second.len(), 1, "the old copy is unmounted: {second:?}");
    assert_ne!(second, first, "a new copy for the new binary");
    let new_exe = inode_of(&format!("/proc/{}/exe", monitor_pid(&new)));
    assert_eq!(new_exe, inode_of(&format!("{}/berth", second[0])));
    assert_ne!(new_exe, old_exe);
    // The container started before keeps running from the old copy.
    assert_eq!(
        inode_of(&format!("/proc/{}/exe", monitor_pid(&old))),
        old_exe
    );
    let state = parse_json(&w.berth(&["runtime", "state", "old"]));
    assert_eq!(state["status"], "running");
    w.delete_force("old");
    w.delete_force("new");
    w.assert_clean();
}

#[test]
fn security_a_shebang_of_proc_self_exe_cannot_change_berth() {
    let w = World::new("shebang");
    let bin = berth_tests::berth_bin();
    let before = std::fs::read(&bin).expect("read berth");
    let host = tempfile::tempdir().expect("host dir");
    // CVE-2019-5736's way in: a file whose interpreter is /proc/self/exe,
    // run by a process that is still berth (an exec's joining process),
    // runs berth itself in the container; the container's other
    // processes then try to write through its /proc/PID/exe.
    let evil = host.path().join("evil");
    std::fs::write(&evil, "#!/proc/self/exe\n").expect("write evil");
    std::fs::set_permissions(&evil, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod evil");
    let vol = format!("{}:/x", host.path().display());
    let writer = "while :; do for p in /proc/[0-9]*; do \
                  case $(readlink $p/exe) in /memfd:*) \
                  (printf x >> $p/exe) 2>/dev/null && echo WROTE >> /x/log; \
                  (: > $p/exe) 2>/dev/null && echo TRUNCATED >> /x/log;; esac; \
                  done; done";
    // berth is linked against the host's libc: lend the container its
    // libraries (read-only; the image's overlay takes the mount points).
    w.busybox_image("busybox", &[]);
    let mut flags = vec!["--image", "busybox", "--volume", &vol];
    flags.extend(["--volume", "/usr/lib:/lib:ro"]);
    if std::path::Path::new("/usr/lib64").is_dir() {
        flags.extend(["--volume", "/usr/lib64:/lib64:ro"]);
    }
    w.run_detached("c", &flags, &["sh", "-c", writer]);
    for _ in 0..10 {
        let out = w.berth(&["runtime", "exec", "c", "--", "/x/evil"]);
        // It was berth that ran: its own usage error.
        assert!(!out.status.success());
        assert!(stderr(&out).contains("subcommand"), "{}", stderr(&out));
    }
    w.delete_force("c");
    let log = std::fs::read_to_string(host.path().join("log")).unwrap_or_default();
    assert_eq!(log, "", "the container changed a berth executable");
    assert!(
        std::fs::read(&bin).expect("read berth") == before,
        "berth changed"
    );
    for copy in w.sealed_copies() {
        assert_eq!(
            std::fs::metadata(format!("{copy}/berth"))
                .expect("copy")
                .len(),
            before.len() as u64
        );
    }
    w.assert_clean();
}

#[test]
fn security_listen_fds_do_not_leak_into_the_container() {
    let w = World::new("listenfds");
    // libcontainer keeps fds 3..3+LISTEN_FDS open into the container: with it
    // set, the container would get the monitor's sync pipe and our output.
    let show = "echo L=$LISTEN_FDS P=$LISTEN_PID; ls /proc/$$/fd; true";
    let out = w
        .command()
        .args(w.run_args(&[], &["sh", "-c", show]))
        .env("LISTEN_FDS", "3")
        .env("LISTEN_PID", std::process::id().to_string())
        .env("LISTEN_FDNAMES", "a:b:c")
        .output()
        .expect("run");
    assert_ok(&out);
    let text = stdout(&out);
    assert!(text.contains("L= P="), "{text}");
    let fds: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(fds, ["0", "1", "2"], "{text}");

    w.run_detached("d", &[], &["sleep", "60"]);
    let out = w
        .command()
        .args(["runtime", "exec", "d", "--", "sh", "-c", show])
        .env("LISTEN_FDS", "3")
        .output()
        .expect("exec");
    assert_ok(&out);
    let text = stdout(&out);
    assert!(text.contains("L= P="), "{text}");
    let fds: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(fds, ["0", "1", "2"], "{text}");
    w.delete_force("d");
    w.assert_clean();
}

#[test]
fn security_proc_interrupts_is_masked() {
    let w = World::new("interrupts");
    assert!(
        std::fs::metadata("/proc/interrupts").is_ok_and(|m| m.len() == 0),
        "procfs reports size 0; the host file has content when read"
    );
    let out = w.run(&[], &["sh", "-c", "wc -c < /proc/interrupts"]);
    assert_ok(&out);
    assert_eq!(stdout(&out).trim(), "0", "{}", stderr(&out));
    // Privileged containers see it, as in Docker.
    let out = w.run(&["--privileged"], &["sh", "-c", "wc -c < /proc/interrupts"]);
    assert_ok(&out);
    assert_ne!(stdout(&out).trim(), "0");
    w.assert_clean();
}

/// A loop device over a file of known bytes, detached when dropped: a block
/// device of the test's own that the host can read.
struct LoopDevice {
    path: String,
}

const DISK_MARKER: &str = "berth-disk-marker";

impl LoopDevice {
    fn new(w: &World) -> Self {
        let file = w.root.path().join("disk.img");
        let mut bytes = DISK_MARKER.as_bytes().to_vec();
        bytes.resize(1 << 20, 0);
        std::fs::write(&file, bytes).expect("write disk image");
        let out = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(&file)
            .output()
            .expect("losetup");
        assert_ok(&out);
        LoopDevice {
            path: stdout(&out).trim().to_string(),
        }
    }

    fn major_minor(&self) -> (u64, u64) {
        use std::os::unix::fs::MetadataExt;
        let rdev = std::fs::metadata(&self.path).expect("stat loop").rdev();
        (libc::major(rdev) as u64, libc::minor(rdev) as u64)
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.path]).status();
    }
}

#[test]
fn a_default_container_cannot_use_a_device_it_makes() {
    let w = World::new("device");
    let disk = LoopDevice::new(&w);
    let mut head = vec![0; DISK_MARKER.len()];
    std::io::Read::read_exact(
        &mut std::fs::File::open(&disk.path).expect("open loop"),
        &mut head,
    )
    .expect("read loop");
    assert_eq!(head, DISK_MARKER.as_bytes(), "the host reads the disk");
    let (major, minor) = disk.major_minor();
    // An image, so that each container writes its own upper directory.
    w.busybox_image("busybox:latest", &[]);
    // CAP_MKNOD stays (Docker's default): making a node works, using one
    // outside the OCI defaults does not, on cgroup v1 and v2 alike. The
    // nodes go in /dev (a tmpfs without nodev), so that the device cgroup
    // (v1) or eBPF program (v2) is what refuses them; in the root
    // filesystem (/tmp), mounted nodev, a node is unusable anyway.
    let script = format!(
        "mknod /dev/berth-disk b {major} {minor} && echo MADE; \
         head -c {len} /dev/berth-disk; echo; \
         echo x > /dev/berth-disk && echo WROTE-DISK; \
         mknod /dev/berth-kmsg c 1 11 && echo berth-device-test > /dev/berth-kmsg && echo WROTE-KMSG; \
         mknod /tmp/disk b {major} {minor} && head -c {len} /tmp/disk; \
         echo x > /dev/null && echo NULL-OK; head -c 4 /dev/zero | wc -c",
        len = DISK_MARKER.len()
    );
    let out = w.run(&["--image", "busybox"], &["sh", "-c", &script]);
    let (text, err) = (stdout(&out), stderr(&out));
    assert!(text.contains("MADE"), "{text}\n{err}");
    assert!(!text.contains(DISK_MARKER), "read the disk: {text}");
    assert!(!text.contains("WROTE"), "{text}");
    assert!(err.contains("Operation not permitted"), "{err}");
    assert!(text.contains("NULL-OK\n4\n"), "{text}\n{err}");
    // Privileged, the same node reads the disk: the refusal is berth's.
    let out = w.run(
        &["--image", "busybox", "--privileged"],
        &[
            "sh",
            "-c",
            &format!(
                "mknod /dev/berth-disk b {major} {minor} && head -c {} /dev/berth-disk",
                DISK_MARKER.len()
            ),
        ],
    );
    assert_eq!(stdout(&out), DISK_MARKER, "{}", stderr(&out));
    w.assert_clean();
}

/// A static helper that makes each raw syscall named on its command line
/// and prints `name=errno` (0 when it succeeded).
const SYSCALL_PROBE_C: &str = r#"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <unistd.h>
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        long r = -1;
        const char *n = argv[i];
        errno = 0;
        if (!strcmp(n, "io_uring_setup")) {
            char params[120];
            memset(params, 0, sizeof params);
            r = syscall(__NR_io_uring_setup, 4, params);
        } else if (!strcmp(n, "vsock")) {
            r = syscall(__NR_socket, 40, SOCK_STREAM, 0);
        } else if (!strcmp(n, "unix")) {
            r = syscall(__NR_socket, AF_UNIX, SOCK_STREAM, 0);
        } else if (!strcmp(n, "personality_bad")) {
            r = syscall(__NR_personality, 0x0040000);
        } else if (!strcmp(n, "personality_query")) {
            r = syscall(__NR_personality, 0xffffffff);
        } else if (!strcmp(n, "vhangup")) {
            r = syscall(__NR_vhangup);
        } else if (!strcmp(n, "pidfd_getfd")) {
            r = syscall(__NR_pidfd_getfd, 0, 0, 0);
        } else if (!strcmp(n, "set_mempolicy")) {
            r = syscall(__NR_set_mempolicy, 0, 0, 0);
        } else if (!strcmp(n, "getpid")) {
            r = syscall(__NR_getpid);
        } else if (!strcmp(n, "newest")) {
            r = syscall(469, 0, 0, 0, 0, 0);
        }
        printf("%s=%d\n", n, r < 0 ? errno : 0);
    }
    return 0;
}
"#;

/// Build [`SYSCALL_PROBE_C`] statically into `dir`; returns its path.
fn build_syscall_probe(dir: &std::path::Path) -> std::path::PathBuf {
    let src = dir.join("syscalls.c");
    let bin = dir.join("syscalls");
    std::fs::write(&src, SYSCALL_PROBE_C).expect("write helper source");
    let out = Command::new("gcc")
        .arg("-static")
        .arg("-O1")
        .arg("-o")
        .arg(&bin)
        .arg(&src)
        .output()
        .expect("run gcc");
    assert_ok(&out);
    bin
}

#[test]
fn security_seccomp_denies_what_docker_denies() {
    let w = World::new("seccomp");
    let tools = tempfile::tempdir().expect("helper dir");
    build_syscall_probe(tools.path());
    let mount = format!("{}:/probe:ro", tools.path().display());
    let calls = [
        "io_uring_setup",
        "vsock",
        "unix",
        "personality_bad",
        "personality_query",
        "vhangup",
        "pidfd_getfd",
        "set_mempolicy",
        "getpid",
        "newest",
    ];
    let mut cmd = vec!["/probe/syscalls"];
    cmd.extend_from_slice(&calls);
    let out = w.run(&["--volume", &mount], &cmd);
    assert_ok(&out);
    let text = stdout(&out);
    let errno = |name: &str| -> i32 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    const EPERM: i32 = 1;
    const ENOSYS: i32 = 38;
    assert_eq!(errno("io_uring_setup"), EPERM, "{text}");
    assert_eq!(errno("vsock"), EPERM, "{text}");
    assert_eq!(errno("vhangup"), EPERM, "{text}");
    assert_eq!(errno("pidfd_getfd"), EPERM, "{text}");
    assert_eq!(errno("set_mempolicy"), EPERM, "{text}");
    assert_ne!(errno("personality_bad"), 0, "{text}");
    assert_eq!(errno("personality_query"), 0, "{text}");
    assert_eq!(errno("unix"), 0, "{text}");
    assert_eq!(errno("getpid"), 0, "{text}");
    // A call newer than the filter knows looks absent, as under runc.
    assert_eq!(errno("newest"), ENOSYS, "{text}");

    // CAP_SYS_NICE brings the NUMA calls back, as in Docker: the filter
    // passes set_mempolicy (the kernel may still refuse its arguments).
    let out = w.run(
        &["--volume", &mount, "--cap-add", "SYS_NICE"],
        &["/probe/syscalls", "set_mempolicy"],
    );
    assert_ok(&out);
    assert_ne!(stdout(&out).trim(), format!("set_mempolicy={EPERM}"));
    // Privileged: no filter at all.
    let out = w.run(
        &["--volume", &mount, "--privileged"],
        &["/probe/syscalls", "io_uring_setup"],
    );
    assert_ok(&out);
    assert_eq!(stdout(&out).trim(), "io_uring_setup=0");
    w.assert_clean();
}

/// Run `argv` as uid/gid 65534 with no supplementary groups.
fn as_nobody(argv: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "--",
        ])
        .args(argv)
        .output()
        .expect("run setpriv")
}

#[test]
fn security_state_is_private_from_local_users() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new("private");
    let root = w.root.path().to_path_buf();
    // As /var/lib/berth would be, made by an older berth under umask 022.
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    w.busybox_image("busybox:latest", &[]);
    let secret = "hunter2-private-token";
    w.register(&serde_json::json!({
        "family": "secretive",
        "networkMode": "none",
        "volumes": [{ "name": "data" }],
        "containerDefinitions": [{
            "name": "app", "image": "busybox", "memory": 32, "user": "65534",
            "environment": [{ "name": "TOKEN", "value": secret }],
            "mountPoints": [{ "sourceVolume": "data", "containerPath": "/data" }],
            "command": ["sh", "-c", "echo token=$TOKEN; ls -d /data && id -u; trap 'exit 0' TERM; sleep 60 & wait"]
        }]
    }));
    let out = w.berth(&["run-task", "--task-definition", "secretive"]);
    assert_ok(&out);
    let task = berth_tests::task_id(&parse_json(&out)["tasks"][0]);
    w.wait_task(&task, "RUNNING");
    // The container, as a non-root user, still reaches its root filesystem
    // and its volume.
    let log = root.join("tasks").join(&task).join("app.log");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains("65534")) {
        assert!(std::time::Instant::now() < deadline, "no output in {log:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        text.contains(&format!("token={secret}")) && text.contains("/data"),
        "{text}"
    );
    let config = root
        .join("run/containers")
        .join(format!("{task}-app"))
        .join("bundle/config.json");
    assert!(std::fs::read_to_string(&config)
        .expect("config.json")
        .contains(secret));

    let mode = |p: &std::path::Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    for dir in [root.clone(), root.join("run")] {
        let m = mode(&dir);
        assert!(m & 0o077 == 0 || m == 0o711, "{}: {m:o}", dir.display());
    }
    let state_db = root.join("state.db");
    for file in [&state_db, &config, &log] {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    // A local user reads none of it, and reaches nothing under images/ or
    // snapshots/ (setuid binaries, device nodes, writable layers).
    for file in [&state_db, &config, &log] {
        let out = as_nobody(&["cat", &file.display().to_string()]);
        assert!(!out.status.success(), "{} is readable", file.display());
        assert!(!stdout(&out).contains(secret));
    }
    for dir in [
        "images",
        "images/snapshots",
        "run/containers",
        "run/tasks",
        "tasks",
    ] {
        let path = root.join(dir);
        assert!(path.exists(), "{} is missing", path.display());
        let out = as_nobody(&["ls", &path.display().to_string()]);
        assert!(!out.status.success(), "{} is listable", path.display());
        let out = as_nobody(&["stat", &path.join("x").display().to_string()]);
        assert!(
            stderr(&out).contains("Permission denied"),
            "{}: {}",
            path.display(),
            stderr(&out)
        );
    }
    assert_ok(&w.berth(&["stop-task", "--task", &task]));
    w.wait_task(&task, "STOPPED");
    w.assert_clean();
}

#[test]
fn security_a_shared_directory_is_refused_as_root_and_left_alone() {
    use std::os::unix::fs::PermissionsExt;
    let shared = tempfile::tempdir().expect("dir");
    // As /tmp: world-writable with the sticky bit.
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o1777))
        .expect("chmod");
    let out = Command::new(berth_tests::berth_bin())
        .arg("--root")
        .arg(shared.path())
        .args(["runtime", "list"])
        .output()
        .expect("run berth");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("shared directory"),
        "{}",
        stderr(&out)
    );
    let mode = std::fs::metadata(shared.path())
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o1777);
}
