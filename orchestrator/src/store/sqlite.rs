//! The embedded store: SQLite (bundled) in WAL mode. Every `berth` command
//! is a short-lived process and many run at once, so each commit is one
//! `BEGIN IMMEDIATE` transaction, waits for the write lock with a bound,
//! and checks its expectations inside the lock.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::config::DbConfig;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{Expect, Op, Record, Store, StoreError, StoreResult};

/// How long a writer waits for another's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// How often `wait` reads the store's revision: one indexed row, cheap.
const WAIT_POLL: Duration = Duration::from_millis(50);

pub struct SqliteStore {
    conn: Mutex<Connection>,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// The database holds task definitions, environment secrets included:
/// create it 0600 (SQLite gives its -wal and -shm files the database's
/// mode) and take any access for others away from an existing one.
///
/// An existing database is never opened here: closing any descriptor of
/// a file drops every POSIX lock this process holds on it, SQLite's
/// included. A second store opened in a process whose first connection
/// lived would leave that connection unlocked, so another process's
/// connection, closing, takes itself for the last, checkpoints and
/// deletes the WAL still in use here (SQLite's "how to corrupt", 2.2).
fn make_private(path: &Path) -> StoreResult<()> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(backend(format!("create {}: {e}", path.display()))),
    }
    let mut names = vec![path.as_os_str().to_owned()];
    for suffix in ["-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        names.push(name);
    }
    for name in names {
        let file = Path::new(&name);
        match std::fs::metadata(file) {
            Ok(m) if m.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| backend(format!("chmod {}: {e}", file.display())))?;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(backend(format!("stat {}: {e}", file.display()))),
        }
    }
    Ok(())
}

impl SqliteStore {
    pub fn open(path: &Path) -> StoreResult<Self> {
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| backend(format!("create {}: {e}", dir.display())))?;
        }
        make_private(path)?;
        let conn =
            Connection::open(path).map_err(|e| backend(format!("open {}: {e}", path.display())))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(backend)?;
        // WAL: readers never wait for the writer; NORMAL sync is durable
        // across process crashes and loses at most the last commits on a
        // power cut.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(backend)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(backend)?;
        // Each CLI call opens and closes the store: by default the last
        // connection to close checkpoints the log into the database (two
        // fsyncs) and deletes it, and the next one makes it again. The
        // log stays instead; commits past its size limit checkpoint it as
        // they go (wal_autocheckpoint), so it does not grow without end.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .map_err(backend)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS kv (
                 key TEXT PRIMARY KEY,
                 value BLOB NOT NULL,
                 revision INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS meta (
                 name TEXT PRIMARY KEY,
                 value INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS leases (
                 name TEXT PRIMARY KEY,
                 holder TEXT NOT NULL,
                 expires_ms INTEGER NOT NULL
             );
             INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', 0);",
        )
        .map_err(backend)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> StoreResult<std::sync::MutexGuard<'_, Connection>> {
        self.conn
            .lock()
            .map_err(|_| backend("connection lock poisoned"))
    }
}

fn store_revision(conn: &Connection) -> StoreResult<u64> {
    conn.query_row("SELECT value FROM meta WHERE name = 'revision'", [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|v| v as u64)
    .map_err(backend)
}

fn current_revision(tx: &Connection, key: &str) -> StoreResult<Option<u64>> {
    tx.query_row("SELECT revision FROM kv WHERE key = ?1", [key], |r| {
        r.get::<_, i64>(0)
    })
    .optional()
    .map(|r| r.map(|v| v as u64))
    .map_err(backend)
}

fn check(tx: &Connection, key: &str, expect: Expect) -> StoreResult<()> {
    let ok = match (expect, current_revision(tx, key)?) {
        (Expect::Any, _) => true,
        (Expect::Absent, found) => found.is_none(),
        (Expect::Revision(want), Some(have)) => want == have,
        (Expect::Revision(_), None) => false,
    };
    if ok {
        Ok(())
    } else {
        Err(StoreError::Conflict(key.to_string()))
    }
}

impl Store for SqliteStore {
    fn get(&self, key: &str) -> StoreResult<Option<Record>> {
        self.conn()?
            .query_row(
                "SELECT value, revision FROM kv WHERE key = ?1",
                [key],
                |r| {
                    Ok(Record {
                        value: r.get(0)?,
                        revision: r.get::<_, i64>(1)? as u64,
                    })
                },
            )
            .optional()
            .map_err(backend)
    }

    fn list(&self, prefix: &str) -> StoreResult<Vec<(String, Record)>> {
        let conn = self.conn()?;
        // Keys in [prefix, successor) share the prefix: a range the
        // primary key's index answers (keys compare as UTF-8 bytes, which
        // is code point order).
        match successor(prefix) {
            Some(upper) => select_records(
                &conn,
                "SELECT key, value, revision FROM kv WHERE key >= ?1 AND key < ?2 ORDER BY key",
                params![prefix, upper],
            ),
            // Every key from the prefix on starts with it.
            None => select_records(
                &conn,
                "SELECT key, value, revision FROM kv WHERE key >= ?1 ORDER BY key",
                params![prefix],
            ),
        }
    }

    fn commit(&self, ops: &[Op]) -> StoreResult<u64> {
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let revision: i64 = tx
            .query_row("SELECT value FROM meta WHERE name = 'revision'", [], |r| {
                r.get(0)
            })
            .map_err(backend)?;
        let revision = revision + 1;
        for op in ops {
            match op {
                Op::Put { key, value, expect } => {
                    check(&tx, key, *expect)?;
                    tx.execute(
                        "INSERT INTO kv (key, value, revision) VALUES (?1, ?2, ?3)
                         ON CONFLICT(key) DO UPDATE SET value = excluded.value, revision = excluded.revision",
                        params![key, value, revision],
                    )
                    .map_err(backend)?;
                }
                Op::Delete { key, expect } => {
                    check(&tx, key, *expect)?;
                    tx.execute("DELETE FROM kv WHERE key = ?1", [key])
                        .map_err(backend)?;
                }
            }
        }
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE name = 'revision'",
            [revision],
        )
        .map_err(backend)?;
        tx.commit().map_err(backend)?;
        Ok(revision as u64)
    }

    fn acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> StoreResult<bool> {
        let now = now_ms();
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let current: Option<(String, i64)> = tx
            .query_row(
                "SELECT holder, expires_ms FROM leases WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(backend)?;
        if let Some((other, expires)) = current {
            if other != holder && expires > now {
                return Ok(false);
            }
        }
        tx.execute(
            "INSERT INTO leases (name, holder, expires_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms",
            params![name, holder, now + ttl.as_millis() as i64],
        )
        .map_err(backend)?;
        tx.commit().map_err(backend)?;
        Ok(true)
    }

    fn revision(&self) -> StoreResult<u64> {
        store_revision(&*self.conn()?)
    }

    /// Polls the store's revision: any commit wakes it, under `prefix` or
    /// not (the trait allows it; the caller reads again).
    fn wait(&self, _prefix: &str, after: u64, timeout: Duration) -> StoreResult<bool> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if self.revision()? > after {
                return Ok(true);
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            std::thread::sleep(left.min(WAIT_POLL));
        }
    }

    /// `shrink_memory` frees the page cache and what else the connection
    /// can; the connection itself stays open (closing it could drop this
    /// process's POSIX locks, see [`make_private`]).
    fn release_memory(&self) {
        if let Ok(conn) = self.conn() {
            let _ = conn.execute_batch("PRAGMA shrink_memory");
        }
    }

    fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()> {
        self.conn()?
            .execute(
                "DELETE FROM leases WHERE name = ?1 AND holder = ?2",
                params![name, holder],
            )
            .map_err(backend)?;
        Ok(())
    }

    fn lease_holder(&self, name: &str) -> StoreResult<Option<String>> {
        self.conn()?
            .query_row(
                "SELECT holder FROM leases WHERE name = ?1 AND expires_ms > ?2",
                params![name, now_ms()],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)
    }

    fn lease_holders(&self, prefix: &str) -> StoreResult<Vec<(String, String)>> {
        let conn = self.conn()?;
        // The range [prefix, successor), as `list` reads keys; with no
        // successor every name from the prefix on starts with it.
        let upper = successor(prefix);
        let sql = match upper {
            Some(_) => "SELECT name, holder FROM leases WHERE name >= ?1 AND expires_ms > ?2 AND name < ?3 ORDER BY name",
            None => "SELECT name, holder FROM leases WHERE name >= ?1 AND expires_ms > ?2 ORDER BY name",
        };
        let mut stmt = conn.prepare(sql).map_err(backend)?;
        let row = |r: &rusqlite::Row<'_>| Ok((r.get(0)?, r.get(1)?));
        let rows = match &upper {
            Some(upper) => stmt.query_map(params![prefix, now_ms(), upper], row),
            None => stmt.query_map(params![prefix, now_ms()], row),
        }
        .map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(backend)
    }
}

/// The (key, record) rows `sql` selects.
fn select_records(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> StoreResult<Vec<(String, Record)>> {
    let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
    let rows = stmt
        .query_map(params, |r| {
            Ok((
                r.get::<_, String>(0)?,
                Record {
                    value: r.get(1)?,
                    revision: r.get::<_, i64>(2)? as u64,
                },
            ))
        })
        .map_err(backend)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(backend)
}

/// The least string greater than every string starting with `prefix`;
/// None when there is none (the empty prefix, or one of U+10FFFF only).
/// `prefix + U+10FFFF` would not do: it leaves out keys that continue
/// with U+10FFFF.
fn successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        // The next scalar value: surrogates are not chars.
        let next = (last as u32 + 1..=char::MAX as u32).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, value: &str, expect: Expect) -> Op {
        Op::Put {
            key: key.into(),
            value: value.as_bytes().to_vec(),
            expect,
        }
    }

    /// A fresh store in a directory of its own; each call of the opener
    /// is a new connection to it, as each `berth` process has.
    fn fresh() -> impl Fn() -> Box<dyn Store> + Sync {
        let dir = tempfile::tempdir().expect("tempdir");
        move || -> Box<dyn Store> {
            Box::new(SqliteStore::open(&dir.path().join("state.db")).expect("open"))
        }
    }

    mod contract {
        crate::store_contract_tests!(super::fresh());
    }

    #[test]
    fn the_database_and_its_journal_are_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("new/state.db");
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        let store = SqliteStore::open(&path).expect("open");
        store
            .commit(&[put("k", "secret", Expect::Absent)])
            .expect("commit");
        assert_eq!(mode(&dir.path().join("new")), 0o700);
        for name in ["state.db", "state.db-wal", "state.db-shm"] {
            assert_eq!(mode(&dir.path().join("new").join(name)), 0o600, "{name}");
        }
        drop(store);
        // One made world-readable by an older berth is made private on open.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        SqliteStore::open(&path).expect("reopen");
        assert_eq!(mode(&path), 0o600);
    }

    /// Closing the last connection leaves the log as it is (no checkpoint:
    /// no fsync, no delete and re-create at the next CLI call), and the
    /// next open reads the commits from it.
    #[test]
    fn the_log_outlives_a_close_and_its_commits_are_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.db");
        let store = SqliteStore::open(&path).expect("open");
        store
            .commit(&[put("k", "v", Expect::Absent)])
            .expect("commit");
        drop(store);
        let wal = std::fs::metadata(dir.path().join("state.db-wal")).expect("the log stays");
        assert!(wal.len() > 0, "not checkpointed into the database on close");
        let again = SqliteStore::open(&path).expect("reopen");
        let got = again.get("k").expect("get").expect("present");
        assert_eq!(got.value, b"v");
    }

    /// How many POSIX locks this process holds on `path` (/proc/locks).
    fn my_locks(path: &Path) -> usize {
        use std::os::unix::fs::MetadataExt;
        let inode = std::fs::metadata(path).expect("stat").ino().to_string();
        let me = std::process::id().to_string();
        std::fs::read_to_string("/proc/locks")
            .expect("read /proc/locks")
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|f| {
                f.get(4) == Some(&me.as_str())
                    && f.get(5).and_then(|d| d.rsplit(':').next()) == Some(inode.as_str())
            })
            .count()
    }

    #[test]
    fn a_second_store_in_one_process_keeps_the_first_ones_locks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.db");
        let first = SqliteStore::open(&path).expect("open");
        first
            .commit(&[put("k", "v", Expect::Absent)])
            .expect("commit");
        first.get("k").expect("read");
        // In WAL mode a connection holds a shared lock on the database
        // for its life: that is how another process's connection, closing,
        // knows it is not the last one and leaves the WAL alone.
        assert!(my_locks(&path) > 0, "no lock held by the first store");
        let second = SqliteStore::open(&path).expect("open again");
        assert!(
            my_locks(&path) > 0,
            "opening a second store dropped the first one's locks"
        );
        drop(second);
        assert!(my_locks(&path) > 0, "closing the second dropped them");
        assert!(first.get("k").expect("read").is_some());
    }

    #[test]
    fn successor_bounds_a_prefix() {
        assert_eq!(successor(""), None);
        assert_eq!(successor("tasks/a/").as_deref(), Some("tasks/a0"));
        assert_eq!(successor("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(successor("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(successor("\u{10FFFF}\u{10FFFF}"), None);
    }
}
