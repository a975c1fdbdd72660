//! Container logs in Docker's json-file format: one JSON object a line,
//! `{"log":"…\n","stream":"stdout","time":"…"}`, rotated by size.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
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
    /// Files kept, the current one included.
    pub max_files: u32,
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
        let time = Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true);
        let line = serde_json::json!({
            "log": String::from_utf8_lossy(text),
            "stream": stream,
            "time": time,
        });
        let mut bytes = line.to_string().into_bytes();
        bytes.push(b'\n');
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

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
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
    fn writes_docker_json_and_rotates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = LogConfig {
            path: dir.path().join("c.log"),
            max_size: 200,
            max_files: 3,
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
