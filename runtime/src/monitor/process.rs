//! The monitor process itself.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use chrono::Utc;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

use super::{Message, MonitorArgs, SYNC_FD, TEE_STDERR_FD, TEE_STDOUT_FD};
use crate::cgroups;
use crate::exit::ExitRecord;
use crate::fsutil::{read_json, sync_dir_of, write_json_atomic, write_json_synced};
use crate::log_forward::Forwarding;
use crate::logs::{JsonFileWriter, LineSplitter, Stream};
use crate::meta::{ContainerMeta, Started};
use crate::paths::ContainerFiles;
use crate::proc::ProcessId;

/// How long output may still arrive after init exits (from processes that
/// escaped the container's pid namespace teardown, which should be none).
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);
/// The builder's exit codes: the container was made and reported; or its
/// failure was.
const BUILT: i32 = 0;
const REPORTED: i32 = 3;
/// When the monitor drops its start-up pages: by then the container's
/// first log lines have been written, and what start-up and they faulted
/// in is not needed again.
const SETTLED: Duration = Duration::from_secs(2);
/// The pump's read size. A pipe hands over at most 64 KiB at a time; a
/// smaller buffer costs only more reads of a busy container, and keeps
/// every idle monitor's heap smaller.
const READ_BUF: usize = 16 * 1024;

/// Run as a monitor; returns the process exit code. Call it before any
/// thread exists: it forks.
pub fn run(args: MonitorArgs) -> i32 {
    // Before any thread exists: a log forwarder's thread then leaves no
    // arena of its own behind in a process that lives as long as its
    // container.
    crate::memory::limit_arenas();
    // SAFETY: the process is single-threaded here (the caller's contract).
    match unsafe { fork() } {
        Ok(ForkResult::Parent { .. }) => return 0,
        Ok(ForkResult::Child) => {}
        Err(e) => {
            tracing::error!("monitor fork: {e}");
            return 1;
        }
    }
    // SAFETY: fd 3 was set up by `spawn` for this process alone.
    let sync = unsafe { File::from_raw_fd(SYNC_FD) };
    let mut monitor = Monitor {
        files: ContainerFiles::new(args.container_dir.clone()),
        sync: Some(sync),
        tee: args.tee.then(|| {
            // SAFETY: as above, fds 4 and 5 were handed over by `spawn`.
            unsafe {
                (
                    File::from_raw_fd(TEE_STDOUT_FD),
                    File::from_raw_fd(TEE_STDERR_FD),
                )
            }
        }),
    };
    match monitor.monitor(&args) {
        Ok(()) => 0,
        // The builder has told the starter already.
        Err(Failure::Reported) => 1,
        Err(Failure::Unreported(error)) => {
            monitor.fail(error);
            1
        }
    }
}

/// How a monitor failed: whether its starter has been told.
enum Failure {
    Reported,
    Unreported(String),
}

impl From<String> for Failure {
    fn from(error: String) -> Self {
        Failure::Unreported(error)
    }
}

struct Monitor {
    files: ContainerFiles,
    sync: Option<File>,
    tee: Option<(File, File)>,
}

impl Monitor {
    /// Tell the starter; once it has gone, stop trying.
    fn send(&mut self, message: &Message) {
        let Some(sync) = self.sync.as_mut() else {
            return;
        };
        let mut line = serde_json::to_vec(message).unwrap_or_default();
        line.push(b'\n');
        if sync.write_all(&line).is_err() {
            self.sync = None;
        }
    }

    /// Log a failure and tell the starter.
    fn fail(&mut self, error: String) {
        tracing::error!("{error}");
        self.send(&Message::Failed { error });
    }

    /// Have the container created (and with `--start`, started), then log
    /// its output and record its end.
    fn monitor(&mut self, args: &MonitorArgs) -> Result<(), Failure> {
        // The container inherits this mask: start it from a clean one, whatever
        // the starter had blocked.
        SigSet::empty()
            .thread_set_mask()
            .map_err(|e| format!("reset signal mask: {e}"))?;
        // A lost write to a departed starter must not kill the monitor.
        // SAFETY: installing SIG_IGN has no handler to race with.
        unsafe {
            let _ = nix::sys::signal::signal(Signal::SIGPIPE, nix::sys::signal::SigHandler::SigIgn);
        }
        // Init is cloned as the builder's child: when the builder exits, it
        // is reparented here.
        nix::sys::prctl::set_child_subreaper(true).map_err(|e| format!("set subreaper: {e}"))?;
        let me = ProcessId::of(std::process::id() as i32)
            .ok_or_else(|| "read own /proc/self/stat".to_string())?;
        write_json_atomic(&self.files.monitor(), &me).map_err(|e| e.to_string())?;
        let meta = self.meta()?;
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let init = self.build_in_child(args, &meta, out_w, err_w)?;
        Ok(self.finish(&meta, init, out_r, err_r)?)
    }

    /// Create (and start) the container in a child that exits once it has
    /// reported it. libcontainer's work (the spec, the seccomp program,
    /// the intermediate and init processes it clones) touches pages this
    /// process would otherwise hold for the container's whole life; in
    /// the child they go with it, and no second image of the binary has to
    /// be loaded to be rid of them. Returns init's pid: init is the child's
    /// child, and this process's once the child has exited.
    fn build_in_child(
        &mut self,
        args: &MonitorArgs,
        meta: &ContainerMeta,
        out_w: OwnedFd,
        err_w: OwnedFd,
    ) -> Result<Pid, Failure> {
        let (pid_r, pid_w) = pipe()?;
        // SAFETY: this process is single-threaded (log forwarding starts
        // later, in `finish`).
        let builder = match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                drop(pid_r);
                let code = match build(args, meta, &self.files, out_w, err_w) {
                    Ok(init) => match nix::unistd::write(&pid_w, &init.as_raw().to_ne_bytes()) {
                        Ok(_) => {
                            self.send(&Message::Created { pid: init.as_raw() });
                            BUILT
                        }
                        // The starter removes what was made.
                        Err(e) => {
                            let error = format!("hand init's pid to the monitor: {e}");
                            self.send(&Message::Failed { error });
                            REPORTED
                        }
                    },
                    Err(error) => {
                        self.fail(error);
                        REPORTED
                    }
                };
                // SAFETY: _exit ends the child without running the
                // parent's exit handlers or destructors a second time.
                unsafe { libc::_exit(code) }
            }
            Ok(ForkResult::Parent { child }) => child,
            Err(e) => return Err(format!("fork the container's builder: {e}").into()),
        };
        // Only init and the builder hold the write ends now: EOF on them
        // means init has gone.
        drop((out_w, err_w, pid_w));
        let mut bytes = [0u8; 4];
        let read = File::from(pid_r).read_exact(&mut bytes);
        let status = loop {
            match waitpid(builder, None) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other,
            }
        };
        match (read, status) {
            (Ok(()), Ok(WaitStatus::Exited(_, BUILT))) => {
                Ok(Pid::from_raw(i32::from_ne_bytes(bytes)))
            }
            (_, Ok(WaitStatus::Exited(_, REPORTED))) => Err(Failure::Reported),
            (_, status) => Err(format!(
                "the container's builder ended before reporting ({status:?}; see monitor.log)"
            )
            .into()),
        }
    }

    fn meta(&self) -> Result<ContainerMeta, String> {
        read_json(&self.files.meta())
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "container.json is missing".to_string())
    }

    /// Log the container's output until it exits; record and report how.
    fn finish(
        &mut self,
        meta: &ContainerMeta,
        init: Pid,
        out_r: OwnedFd,
        err_r: OwnedFd,
    ) -> Result<(), String> {
        let file = JsonFileWriter::open(meta.log.clone())
            .map_err(|e| format!("open log {}: {e}", meta.log.path.display()))?;
        // A forwarder that cannot start (no thread) leaves the local log.
        let forward = meta.log.forward.clone().and_then(|f| {
            Forwarding::start(f)
                .map_err(|e| tracing::warn!("start log forwarding: {e}"))
                .ok()
        });
        let mut log = LogOutputs { file, forward };
        let status = self.pump(init, &out_r, &err_r, &mut log);
        if let Some(forward) = log.forward.take() {
            forward.close();
        }
        let status = status?;
        let oom_killed =
            cgroups::oom_kill_count(cgroups::layout(), &meta.cgroups_path).is_some_and(|n| n > 0);
        let started_at = read_json::<Started>(&self.files.started())
            .ok()
            .flatten()
            .map(|s| s.at);
        let record = ExitRecord::from_wait(status, oom_killed, started_at)
            .ok_or("init ended without an exit status")?;
        let exit_file = self.files.exit();
        write_json_synced(&exit_file, &record).map_err(|e| e.to_string())?;
        tracing::info!(
            exit_code = record.exit_code,
            oom = record.oom_killed,
            "container exited"
        );
        self.send(&Message::Exited(record));
        // The record is whole on disk already; only its name waits for this.
        // The starter may be deleting the container meanwhile (then the
        // directory is gone, and so is the need).
        if let Err(e) = sync_dir_of(&exit_file) {
            tracing::debug!("{e}");
        }
        Ok(())
    }

    /// Copy output into the log until init has exited and its pipes closed;
    /// reap every child meanwhile. Returns init's wait status. [`SETTLED`]
    /// in, drop the pages start-up faulted in (once).
    fn pump(
        &mut self,
        init: Pid,
        out_r: &OwnedFd,
        err_r: &OwnedFd,
        log: &mut LogOutputs,
    ) -> Result<WaitStatus, String> {
        let mut settle_at = Some(Instant::now() + SETTLED);
        let mut mask = SigSet::empty();
        for s in [
            Signal::SIGCHLD,
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGHUP,
        ] {
            mask.add(s);
        }
        mask.thread_block()
            .map_err(|e| format!("block signals: {e}"))?;
        let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| format!("signalfd: {e}"))?;

        let mut streams = [
            (Some(out_r.as_fd()), Stream::Stdout, LineSplitter::default()),
            (Some(err_r.as_fd()), Stream::Stderr, LineSplitter::default()),
        ];
        // A SIGCHLD may have come before the mask: look once up front.
        let mut status = reap(init);
        let mut deadline = status.map(|_| Instant::now() + DRAIN_AFTER_EXIT);
        let mut buf = vec![0u8; READ_BUF];
        loop {
            let open: Vec<BorrowedFd> = streams.iter().filter_map(|s| s.0).collect();
            if open.is_empty() && status.is_some() {
                break;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            let mut fds: Vec<PollFd> = open
                .iter()
                .map(|fd| PollFd::new(*fd, PollFlags::POLLIN))
                .collect();
            fds.push(PollFd::new(sfd.as_fd(), PollFlags::POLLIN));
            if settle_at.is_some_and(|t| Instant::now() >= t) {
                settle_at = None;
                crate::memory::release_startup_pages();
                crate::memory::trim_heap();
            }
            let timeout = if deadline.is_some() {
                PollTimeout::from(100u16)
            } else if let Some(t) = settle_at {
                let ms = t.saturating_duration_since(Instant::now()).as_millis() + 1;
                PollTimeout::from(u16::try_from(ms).unwrap_or(u16::MAX))
            } else {
                PollTimeout::NONE
            };
            match poll(&mut fds, timeout) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(format!("poll: {e}")),
            }
            let ready: Vec<RawFd> = fds
                .iter()
                .filter(|p| p.revents().is_some_and(|r| !r.is_empty()))
                .map(|p| p.as_fd().as_raw_fd())
                .collect();
            drop(fds);
            if ready.contains(&sfd.as_fd().as_raw_fd()) {
                while let Ok(Some(_)) = sfd.read_signal() {}
                if status.is_none() {
                    status = reap(init);
                    if status.is_some() {
                        deadline = Some(Instant::now() + DRAIN_AFTER_EXIT);
                    }
                } else {
                    reap(init);
                }
            }
            for (fd, stream, splitter) in streams.iter_mut() {
                let Some(raw) = fd.map(|f| f.as_raw_fd()) else {
                    continue;
                };
                if !ready.contains(&raw) {
                    continue;
                }
                match nix::unistd::read(raw, &mut buf) {
                    Ok(0) => {
                        splitter.finish(|line| write_entry(log, *stream, line));
                        *fd = None;
                    }
                    Ok(n) => {
                        self.tee_out(*stream, &buf[..n]);
                        splitter.push(&buf[..n], |line| write_entry(log, *stream, line));
                    }
                    Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
                    Err(e) => {
                        tracing::warn!("read {stream:?}: {e}");
                        *fd = None;
                    }
                }
            }
        }
        for (_, stream, splitter) in streams.iter_mut() {
            splitter.finish(|line| write_entry(log, *stream, line));
        }
        status.ok_or_else(|| "lost track of the container's init".to_string())
    }

    fn tee_out(&mut self, stream: Stream, data: &[u8]) {
        if let Some((out, err)) = self.tee.as_mut() {
            let target = match stream {
                Stream::Stdout => out,
                Stream::Stderr => err,
            };
            if target.write_all(data).is_err() {
                self.tee = None;
            }
        }
    }
}

/// The container's json-file log, and its log driver's receiver if any.
struct LogOutputs {
    file: JsonFileWriter,
    forward: Option<Forwarding>,
}

fn write_entry(log: &mut LogOutputs, stream: Stream, line: &[u8]) {
    if let Err(e) = log.file.write(stream, line) {
        tracing::warn!("write log: {e}");
    }
    if let Some(forward) = &log.forward {
        forward.send(stream, line);
    }
}

/// Create the container through libcontainer, and with `--start` start
/// it (its start time recorded first); returns init's pid. Runs in the
/// builder child.
fn build(
    args: &MonitorArgs,
    meta: &ContainerMeta,
    files: &ContainerFiles,
    out_w: OwnedFd,
    err_w: OwnedFd,
) -> Result<Pid, String> {
    let devnull = File::open("/dev/null").map_err(|e| format!("open /dev/null: {e}"))?;
    crate::seccomp_cache::prepare(
        &meta.bundle,
        &crate::seccomp_cache::cache_dir(&args.libcontainer_root),
    );
    crate::cgroups::warm_mount_cache();
    let mut container = ContainerBuilder::new(meta.id.clone(), SyscallType::default())
        .with_root_path(args.libcontainer_root.clone())
        .and_then(|b| b.validate_id())
        .map_err(|e| e.to_string())?
        .with_stdin(OwnedFd::from(devnull))
        .with_stdout(out_w)
        .with_stderr(err_w)
        .as_init(&meta.bundle)
        .with_systemd(false)
        .with_detach(true)
        .build()
        .map_err(|e| format!("create: {e}"))?;
    let init = container.pid().ok_or("libcontainer reported no init pid")?;
    if args.start {
        write_json_atomic(&files.started(), &Started { at: Utc::now() })
            .map_err(|e| e.to_string())?;
        container.start().map_err(|e| format!("start: {e}"))?;
    }
    Ok(init)
}

/// Reap every exited child; return init's status if it was among them.
fn reap(init: Pid) -> Option<WaitStatus> {
    let mut found = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return found,
            Ok(status) => {
                if status.pid() == Some(init)
                    && matches!(status, WaitStatus::Exited(..) | WaitStatus::Signaled(..))
                {
                    found = Some(status);
                }
            }
        }
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))
}
