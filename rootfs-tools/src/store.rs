//! The content store: blobs by digest, verified before they become
//! visible, and references (`name:tag`) to image manifests. Many `berth`
//! processes share it: writes go through temp files and renames, and the
//! reference index is changed under an exclusive file lock.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::digest::{Digest, DigestWriter};
use crate::error::{Error, IoContext, Result};

static INGEST_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The mode of the store's directories and of berth's own files in it.
pub const PRIVATE_DIR: u32 = 0o700;
pub const PRIVATE_FILE: u32 = 0o600;

/// The store's directories (relative to its root, "" the root itself),
/// each made private (0700) on open.
pub const PRIVATE_DIRS: &[&str] = &[
    "",
    "blobs",
    "blobs/sha256",
    "ingest",
    "layers",
    "layers/sha256",
    "snapshots",
];

/// Create `dir` (and its parents) and make it 0700 whatever the umask, or
/// whatever an older berth left.
pub(crate) fn private_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).context(|| format!("create {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(PRIVATE_DIR))
        .context(|| format!("chmod {}", dir.display()))
}

#[derive(Clone, Debug)]
pub struct ContentStore {
    root: PathBuf,
}

/// One reference in the index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefEntry {
    /// Digest of the (single-platform) image manifest.
    pub manifest: Digest,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When a task last started from it (image cleanup removes the least
    /// recently used first). Absent in older stores and until first used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When a task's pull on this host fetched it (the `once` pull
    /// behaviour pulls an image no task pulled here yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pulled_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Default, Serialize, Deserialize)]
struct RefIndex {
    refs: BTreeMap<String, RefEntry>,
}

/// A file lock on the store, released when dropped.
pub struct StoreLock {
    _lock: nix::fcntl::Flock<File>,
}

/// How old an image's recorded last use may be before a new use is
/// written ([`ContentStore::record_use`]).
const USE_RESOLUTION_SECS: i64 = 60;

impl ContentStore {
    /// Open (creating if needed) the store under `root`. Its directories
    /// are root's alone (0700), older stores' included: unpacked layers
    /// keep the images' setuid files, and no local user may reach them.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let store = Self { root: root.into() };
        let root = &store.root;
        for sub in PRIVATE_DIRS {
            private_dir(&root.join(sub))?;
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }

    fn ingest_dir(&self) -> PathBuf {
        self.root.join("ingest")
    }

    /// Where unpacked layers live, one directory per layer blob digest.
    pub fn layers_dir(&self) -> PathBuf {
        self.root.join("layers/sha256")
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        File::open(self.blob_path(digest)).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::BlobNotFound(digest.to_string()),
            _ => Error::io(format!("open blob {digest}"), e),
        })
    }

    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.open_blob(digest)?
            .read_to_end(&mut bytes)
            .context(|| format!("read blob {digest}"))?;
        Ok(bytes)
    }

    /// A temp file in the store's ingest dir, on the blobs' filesystem.
    pub fn ingest_file(&self) -> Result<(File, PathBuf)> {
        let n = INGEST_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = self
            .ingest_dir()
            .join(format!("{}-{n}.partial", std::process::id()));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(PRIVATE_FILE)
            .open(&path)
            .context(|| format!("create {}", path.display()))?;
        Ok((file, path))
    }

    /// Stream `reader` into the store. With `expected`, the content must
    /// have that digest (and `size`, if given), or nothing is kept.
    pub fn write_blob(
        &self,
        mut reader: impl Read,
        expected: Option<&Digest>,
        size: Option<u64>,
    ) -> Result<(Digest, u64)> {
        if let Some(d) = expected {
            if self.has_blob(d) {
                return Ok((
                    d.clone(),
                    fs::metadata(self.blob_path(d)).map_or(0, |m| m.len()),
                ));
            }
        }
        let (file, tmp) = self.ingest_file()?;
        let result = (|| {
            let mut writer = DigestWriter::new(io::BufWriter::with_capacity(1 << 20, file));
            io::copy(&mut reader, &mut writer).context(|| {
                format!(
                    "write blob {}",
                    expected.map_or("(new)".to_string(), |d| d.to_string())
                )
            })?;
            let (buffered, digest, written) = writer.finish();
            let file = buffered
                .into_inner()
                .map_err(|e| Error::io("flush blob", e.into_error()))?;
            self.commit(file, &tmp, &digest, written, expected, size)?;
            Ok((digest, written))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Verify a fully written ingest file and move it into place.
    pub fn commit(
        &self,
        file: File,
        tmp: &Path,
        digest: &Digest,
        written: u64,
        expected: Option<&Digest>,
        size: Option<u64>,
    ) -> Result<()> {
        if let Some(want) = expected {
            if want != digest {
                return Err(Error::DigestMismatch {
                    expected: want.to_string(),
                    actual: digest.to_string(),
                });
            }
        }
        if let Some(want) = size {
            if want != written {
                return Err(Error::SizeMismatch {
                    digest: digest.to_string(),
                    expected: want,
                    actual: written,
                });
            }
        }
        file.sync_all().context(|| format!("fsync blob {digest}"))?;
        fs::rename(tmp, self.blob_path(digest)).context(|| format!("store blob {digest}"))
    }

    pub fn write_blob_bytes(&self, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::of(bytes);
        self.write_blob(bytes, Some(&digest), Some(bytes.len() as u64))?;
        Ok(digest)
    }

    pub fn remove_blob(&self, digest: &Digest) -> Result<()> {
        match fs::remove_file(self.blob_path(digest)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(Error::io(format!("remove blob {digest}"), e))
            }
            _ => Ok(()),
        }
    }

    pub fn list_blobs(&self) -> Result<Vec<Digest>> {
        let dir = self.blobs_dir();
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).context(|| format!("read {}", dir.display()))? {
            let entry = entry.context(|| format!("read {}", dir.display()))?;
            if let Ok(d) = format!("sha256:{}", entry.file_name().to_string_lossy()).parse() {
                out.push(d);
            }
        }
        Ok(out)
    }

    fn flock(&self, name: &str, arg: nix::fcntl::FlockArg) -> Result<StoreLock> {
        let path = self.root.join(name);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(PRIVATE_FILE)
            .open(&path)
            .context(|| format!("open {}", path.display()))?;
        let lock = nix::fcntl::Flock::lock(file, arg)
            .map_err(|(_, e)| Error::io(format!("lock {}", path.display()), e.into()))?;
        Ok(StoreLock { _lock: lock })
    }

    /// Held (shared) by anything that adds content: garbage collection
    /// waits for it, so a blob written but not yet referenced survives.
    pub fn writer_lease(&self) -> Result<StoreLock> {
        self.flock("gc.lock", nix::fcntl::FlockArg::LockShared)
    }

    /// Held while layers are unpacked: tasks started together from an
    /// image never run before would otherwise each unpack every layer, and
    /// all but one would throw their work away.
    pub fn unpack_lock(&self) -> Result<StoreLock> {
        self.flock("unpack.lock", nix::fcntl::FlockArg::LockExclusive)
    }

    /// Held by garbage collection: no writer runs meanwhile.
    pub fn gc_lock(&self) -> Result<StoreLock> {
        self.flock("gc.lock", nix::fcntl::FlockArg::LockExclusive)
    }

    fn refs_path(&self) -> PathBuf {
        self.root.join("refs.json")
    }

    pub fn refs(&self) -> Result<BTreeMap<String, RefEntry>> {
        let path = self.refs_path();
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<RefIndex>(&bytes)
                .map(|i| i.refs)
                .map_err(|source| Error::Json {
                    context: format!("parse {}", path.display()),
                    source,
                }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(Error::io(format!("read {}", path.display()), e)),
        }
    }

    /// Change the reference index under the lock.
    pub fn update_refs<T>(
        &self,
        change: impl FnOnce(&mut BTreeMap<String, RefEntry>) -> Result<T>,
    ) -> Result<T> {
        let _lock = self.flock("refs.lock", nix::fcntl::FlockArg::LockExclusive)?;
        let mut refs = self.refs()?;
        let out = change(&mut refs)?;
        let bytes =
            serde_json::to_vec_pretty(&RefIndex { refs }).map_err(|source| Error::Json {
                context: "encode refs".into(),
                source,
            })?;
        let (mut file, tmp) = self.ingest_file()?;
        let written = file
            .write_all(&bytes)
            .and_then(|()| file.sync_all())
            .and_then(|()| fs::rename(&tmp, self.refs_path()));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(Error::io("write refs.json", e));
        }
        Ok(out)
    }

    pub fn set_ref(&self, name: &str, manifest: &Digest) -> Result<()> {
        self.update_refs(|refs| {
            refs.insert(
                name.to_string(),
                RefEntry {
                    manifest: manifest.clone(),
                    created_at: chrono::Utc::now(),
                    last_used_at: None,
                    pulled_at: None,
                },
            );
            Ok(())
        })
    }

    /// Record that a task uses `name` now, and with `pulled` that its pull
    /// fetched it. An image untagged meanwhile is no error: nothing to
    /// record.
    pub fn record_use(&self, name: &str, pulled: bool) -> Result<()> {
        // Least recently used is all image cleanup asks (of images unused
        // for hours): a use recorded within the last minute is recent
        // enough, and a task's start skips the locked, fsynced rewrite.
        let recent = chrono::Utc::now() - chrono::Duration::seconds(USE_RESOLUTION_SECS);
        if !pulled
            && self
                .refs()?
                .get(name)
                .and_then(|e| e.last_used_at)
                .is_some_and(|at| at > recent)
        {
            return Ok(());
        }
        self.update_refs(|refs| {
            if let Some(entry) = refs.get_mut(name) {
                let now = chrono::Utc::now();
                entry.last_used_at = Some(now);
                if pulled {
                    entry.pulled_at = Some(now);
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_verified_before_they_appear() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ContentStore::open(dir.path()).expect("open");
        let d = store.write_blob_bytes(b"hello").expect("write");
        assert_eq!(store.read_blob(&d).expect("read"), b"hello");
        let wrong = Digest::of(b"other");
        let err = store
            .write_blob(&b"hello"[..], Some(&wrong), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("corrupt or truncated"), "{err}");
        assert!(!store.has_blob(&wrong));
        let truncated = Digest::of(b"hello world");
        assert!(store
            .write_blob(&b"hello"[..], Some(&truncated), Some(11))
            .is_err());
        assert_eq!(fs::read_dir(store.ingest_dir()).expect("ingest").count(), 0);
        assert_eq!(store.list_blobs().expect("list"), vec![d]);
    }

    #[test]
    fn a_use_is_written_at_most_once_a_minute_but_a_pull_always() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ContentStore::open(dir.path()).expect("open");
        let name = "docker.io/library/busybox:latest";
        store.set_ref(name, &Digest::of(b"m")).expect("set");
        let entry = |s: &ContentStore| s.refs().expect("refs")[name].clone();
        store.record_use(name, false).expect("first use");
        let first = entry(&store).last_used_at.expect("recorded");
        store.record_use(name, false).expect("second use");
        assert_eq!(entry(&store).last_used_at, Some(first), "within the minute");
        store.record_use(name, true).expect("pulled");
        let pulled = entry(&store);
        assert!(pulled.pulled_at.is_some() && pulled.last_used_at > Some(first));
        // An old use is brought up to date.
        let old = chrono::Utc::now() - chrono::Duration::seconds(USE_RESOLUTION_SECS + 1);
        store
            .update_refs(|r| {
                r.get_mut(name).expect("entry").last_used_at = Some(old);
                Ok(())
            })
            .expect("age");
        store.record_use(name, false).expect("use");
        assert!(entry(&store).last_used_at > Some(old));
        // An image untagged meanwhile: nothing to record, no error.
        store.record_use("localhost/gone:1", false).expect("gone");
    }

    #[test]
    fn refs_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ContentStore::open(dir.path()).expect("open");
        let d = Digest::of(b"m");
        store
            .set_ref("docker.io/library/busybox:latest", &d)
            .expect("set");
        let refs = store.refs().expect("refs");
        assert_eq!(refs["docker.io/library/busybox:latest"].manifest, d);
        store
            .update_refs(|r| {
                r.clear();
                Ok(())
            })
            .expect("clear");
        assert!(store.refs().expect("refs").is_empty());
    }

    #[test]
    fn the_store_is_private() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("images");
        // An older store, made with the umask's modes.
        fs::create_dir_all(root.join("layers/sha256")).expect("old store");
        fs::set_permissions(root.join("layers"), fs::Permissions::from_mode(0o755)).expect("chmod");
        let store = ContentStore::open(&root).expect("open");
        let d = store.write_blob_bytes(b"secret").expect("write");
        store.set_ref("localhost/x:1", &d).expect("ref");
        let _lease = store.writer_lease().expect("lease");
        let mode = |p: &Path| fs::metadata(p).expect("stat").mode() & 0o7777;
        for sub in PRIVATE_DIRS {
            assert_eq!(mode(&root.join(sub)), 0o700, "{sub}/");
        }
        for file in ["refs.json", "gc.lock", &format!("blobs/sha256/{}", d.hex())] {
            assert_eq!(mode(&root.join(file)), 0o600, "{file}");
        }
    }
}
