//! Container logs in Docker's json-file format: one JSON object a line,
//! `{"log":"…\n","stream":"stdout","time":"…"}`, rotated by size.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Docker's json-file defaults are unbounded; berth bounds them.
pub const DEFAULT_MAX_SIZE: u64 = 10 * 1024 * 1024;
pub const DEFAULT_MAX_FILES: u32 = 3;
/// A line longer than this is written in pieces, as Docker does at 16 KiB.
const MAX_LINE: usize = 16 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogConfig {
    pub path: PathBuf,
    /// Rotate when the current file reaches this many bytes.
    pub max_size: u64,
    /// Files kept, the current one included; 0 keeps nothing (Docker's
    /// `none` driver).
    pub max_files: u32,
    /// Where lines are forwarded too (syslog, journald, fluentd).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward: Option<crate::log_forward::Forward>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub log: String,
    pub stream: Stream,
    pub time: DateTime<Utc>,
}

/// Appends entries to the current log file and rotates it.
pub struct JsonFileWriter {
    config: LogConfig,
    file: File,
    size: u64,
}

impl JsonFileWriter {
    pub fn open(config: LogConfig) -> io::Result<Self> {
        let file = open_append(&config.path)?;
        let size = file.metadata()?.len();
        Ok(Self { config, file, size })
    }

    pub fn write(&mut self, stream: Stream, text: &[u8]) -> io::Result<()> {
        if self.config.max_files == 0 {
            return Ok(());
        }
        let bytes = encode_entry(stream, text, SystemTime::now());
        if self.size > 0 && self.size + bytes.len() as u64 > self.config.max_size {
            self.rotate()?;
        }
        self.file.write_all(&bytes)?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let max = self.config.max_files.max(1);
        if max == 1 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        let _ = fs::remove_file(rotated(&self.config.path, max - 1));
        for n in (1..max - 1).rev() {
            let from = rotated(&self.config.path, n);
            if from.exists() {
                fs::rename(&from, rotated(&self.config.path, n + 1))?;
            }
        }
        fs::rename(&self.config.path, rotated(&self.config.path, 1))?;
        self.file = open_append(&self.config.path)?;
        self.size = 0;
        Ok(())
    }
}

/// One json-file line. Encoded by hand: it runs for every line a container
/// prints, inside the monitor that should stay small.
fn encode_entry(stream: Stream, text: &[u8], time: SystemTime) -> Vec<u8> {
    let text = String::from_utf8_lossy(text);
    let mut out = Vec::with_capacity(text.len() + 80);
    out.extend_from_slice(b"{\"log\":");
    push_json_string(&mut out, &text);
    out.extend_from_slice(match stream {
        Stream::Stdout => b",\"stream\":\"stdout\",\"time\":\"",
        Stream::Stderr => b",\"stream\":\"stderr\",\"time\":\"",
    });
    out.extend_from_slice(rfc3339_nanos(time).as_bytes());
    out.extend_from_slice(b"\"}\n");
    out
}

fn push_json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// `2006-01-02T15:04:05.999999999Z`, as Docker writes log times.
fn rfc3339_nanos(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_nanos()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Logs carry whatever the container prints, secrets included: only root
/// reads them.
fn open_append(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(crate::fsutil::PRIVATE_FILE)
        .open(path)
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// Splits a byte stream into lines, holding a partial line until its end
/// arrives (or it grows past [`MAX_LINE`]).
#[derive(Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    pub fn push(&mut self, data: &[u8], mut emit: impl FnMut(&[u8])) {
        self.pending.extend_from_slice(data);
        let mut start = 0;
        while let Some(pos) = self.pending[start..].iter().position(|b| *b == b'\n') {
            emit(&self.pending[start..start + pos + 1]);
            start += pos + 1;
        }
        while self.pending.len() - start >= MAX_LINE {
            emit(&self.pending[start..start + MAX_LINE]);
            start += MAX_LINE;
        }
        self.pending.drain(..start);
    }

    pub fn finish(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.pending.is_empty() {
            emit(&self.pending);
            self.pending.clear();
        }
    }
}

/// All entries of a container's log, oldest first, across rotated files.
pub fn read_entries(path: &Path, max_files: u32) -> io::Result<Vec<LogEntry>> {
    let mut files: Vec<PathBuf> = (1..max_files.max(1))
        .rev()
        .map(|n| rotated(path, n))
        .collect();
    files.push(path.to_path_buf());
    let mut out = Vec::new();
    for file in files {
        let f = match File::open(&file) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for line in BufReader::new(f).lines() {
            let line = line?;
            let entry = serde_json::from_str(&line).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", file.display()),
                )
            })?;
            out.push(entry);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_and_keeps_partials() {
        let mut s = LineSplitter::default();
        let mut got: Vec<String> = Vec::new();
        s.push(b"a\nbc", |l| got.push(String::from_utf8_lossy(l).into()));
        s.push(b"d\n", |l| got.push(String::from_utf8_lossy(l).into()));
        s.push(b"tail", |l| got.push(String::from_utf8_lossy(l).into()));
        s.finish(|l| got.push(String::from_utf8_lossy(l).into()));
        assert_eq!(got, vec!["a\n", "bcd\n", "tail"]);
        let mut pieces = 0;
        s.push(&vec![b'x'; MAX_LINE * 2 + 1], |_| pieces += 1);
        assert_eq!(pieces, 2);
    }

    #[test]
    fn entries_are_docker_json() {
        let time = UNIX_EPOCH + std::time::Duration::new(1_700_000_000, 123_456_789);
        let line = encode_entry(Stream::Stderr, "a \"q\" \\ \t\u{1}é\n".as_bytes(), time);
        assert_eq!(line.last(), Some(&b'\n'));
        let entry: LogEntry = serde_json::from_slice(&line).expect("valid JSON");
        assert_eq!(entry.log, "a \"q\" \\ \t\u{1}é\n");
        assert_eq!(entry.stream, Stream::Stderr);
        assert_eq!(entry.time, DateTime::<Utc>::from(time));
        let lossy: LogEntry =
            serde_json::from_slice(&encode_entry(Stream::Stdout, b"\xff!", time)).expect("json");
        assert_eq!(lossy.log, "\u{fffd}!");
    }

    #[test]
    fn times_match_chrono() {
        for secs in [
            0u64,
            951_782_400,
            1_709_164_800,
            4_102_444_799,
            1_795_532_133,
        ] {
            let t = UNIX_EPOCH + std::time::Duration::new(secs, 5);
            let ours = rfc3339_nanos(t);
            let theirs =
                DateTime::<Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
            assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn no_files_kept_keeps_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = LogConfig {
            path: dir.path().join("c.log"),
            max_size: 200,
            max_files: 0,
            forward: None,
        };
        let mut w = JsonFileWriter::open(config.clone()).expect("open");
        w.write(Stream::Stdout, b"secret\n").expect("write");
        assert!(read_entries(&config.path, 3).expect("read").is_empty());
    }

    #[test]
    fn writes_docker_json_and_rotates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = LogConfig {
            path: dir.path().join("c.log"),
            max_size: 200,
            max_files: 3,
            forward: None,
        };
        let mut w = JsonFileWriter::open(config.clone()).expect("open");
        for i in 0..20 {
            w.write(Stream::Stdout, format!("line {i}\n").as_bytes())
                .expect("write");
        }
        w.write(Stream::Stderr, b"last\n").expect("write");
        assert!(rotated(&config.path, 1).exists());
        assert!(rotated(&config.path, 2).exists());
        assert!(!rotated(&config.path, 3).exists());
        let entries = read_entries(&config.path, 3).expect("read");
        assert!(entries.len() < 21, "old files were dropped");
        let last = entries.last().expect("last");
        assert_eq!((last.log.as_str(), last.stream), ("last\n", Stream::Stderr));
        let logs: Vec<&str> = entries.iter().map(|e| e.log.as_str()).collect();
        let mut sorted = logs.clone();
        sorted.sort_by_key(|l| {
            l.trim_start_matches("line ")
                .trim()
                .parse::<u32>()
                .unwrap_or(99)
        });
        assert_eq!(logs, sorted, "oldest first");
        for f in [config.path.clone(), rotated(&config.path, 1)] {
            assert!(fs::metadata(&f).expect("meta").len() <= 200);
        }
    }
}
