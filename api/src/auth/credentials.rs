//! The access keys `berth serve --auth sigv4 --credentials FILE` accepts,
//! in the AWS shared-credentials shape (what `~/.aws/credentials` holds,
//! so one file can serve both the server and its clients):
//!
//! ```ini
//! [lab]
//! aws_access_key_id = AKIALAB
//! aws_secret_access_key = s3cr3t
//! ```
//!
//! The file is the server's whole authentication, so it is read with care:
//! a regular file, at most [`MAX_FILE_BYTES`], owned by the server's user
//! (or root) and not readable or writable by group or others. Loose
//! permissions are refused, not warned about, as ssh refuses a private key:
//! a file others can write lets them add their own key, one others can read
//! has already leaked every secret, and a warning in a log is easily missed
//! on a server that exists to be reached beyond loopback. The fix is one
//! `chmod 600`, which the error says.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// A credentials file larger than this is not one (a few hundred bytes a
/// profile); refusing it bounds what the server reads at startup.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Why the credentials file cannot be used; every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    // `io`, not `source`: the message carries it once, not twice in a chain.
    #[error("credentials file {}: {io}", path.display())]
    Io { path: PathBuf, io: std::io::Error },
    #[error("credentials file {}: not a regular file", path.display())]
    NotAFile { path: PathBuf },
    #[error("credentials file {}: {size} bytes, over the limit of {MAX_FILE_BYTES}", path.display())]
    TooLarge { path: PathBuf, size: u64 },
    #[error(
        "credentials file {}: mode {mode:04o} lets group or others read or write its secrets; \
         run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error(
        "credentials file {}: owned by uid {owner}, not by the server's user (uid {euid}) or root; \
         another user could change the keys",
        path.display()
    )]
    Owner {
        path: PathBuf,
        owner: u32,
        euid: u32,
    },
    #[error("credentials file {}: not UTF-8 text", path.display())]
    NotText { path: PathBuf },
    #[error("credentials file {}:{line}: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("credentials file {}: no profile with aws_access_key_id and aws_secret_access_key", path.display())]
    Empty { path: PathBuf },
}

/// Access key id → secret access key (and the profile it came from).
#[derive(Clone, Default)]
pub struct Credentials {
    keys: BTreeMap<String, Key>,
}

#[derive(Clone)]
struct Key {
    profile: String,
    secret: String,
}

impl Credentials {
    /// The secret for an access key id, if the file holds it.
    pub fn secret(&self, access_key: &str) -> Option<&str> {
        self.keys.get(access_key).map(|k| k.secret.as_str())
    }

    /// How many access keys there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Reads and parses the file, refusing it as the module doc says.
    pub fn from_file(path: &Path) -> Result<Self, AuthError> {
        let io = |io| AuthError::Io {
            path: path.to_path_buf(),
            io,
        };
        // O_NONBLOCK: a FIFO given as the file must not hang the server's start
        // (it is refused below as not a regular file).
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(io)?;
        // The open file's metadata, not the path's: what is checked is what is read.
        let meta = file.metadata().map_err(io)?;
        check_file(path, &meta)?;
        let mut bytes = Vec::new();
        file.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(AuthError::TooLarge {
                path: path.to_path_buf(),
                size: bytes.len() as u64,
            });
        }
        let text = String::from_utf8(bytes).map_err(|_| AuthError::NotText {
            path: path.to_path_buf(),
        })?;
        parse(&text).map_err(|e| match e {
            Parse::Syntax(line, message) => AuthError::Syntax {
                path: path.to_path_buf(),
                line,
                message,
            },
            Parse::Empty => AuthError::Empty {
                path: path.to_path_buf(),
            },
        })
    }
}

/// Never prints a secret (the options struct holding this gets logged).
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let profiles: Vec<(&str, &str)> = self
            .keys
            .iter()
            .map(|(id, k)| (k.profile.as_str(), id.as_str()))
            .collect();
        f.debug_struct("Credentials")
            .field("profiles", &profiles)
            .finish_non_exhaustive()
    }
}

fn check_file(path: &Path, meta: &std::fs::Metadata) -> Result<(), AuthError> {
    if !meta.is_file() {
        return Err(AuthError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(AuthError::TooLarge {
            path: path.to_path_buf(),
            size: meta.len(),
        });
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if meta.uid() != euid && meta.uid() != 0 {
        return Err(AuthError::Owner {
            path: path.to_path_buf(),
            owner: meta.uid(),
            euid,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(AuthError::Permissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Why the text is not a credentials file (the caller adds the path).
#[derive(Debug, PartialEq, Eq)]
pub enum Parse {
    Syntax(usize, String),
    Empty,
}

/// The profiles of an INI text. Comments (`#`, `;`) and blank lines are
/// skipped; keys other than the two are ignored (a shared file may carry
/// `region`, `aws_session_token`…); a profile with one of the two keys
/// must have both; an access key in two profiles is refused (which secret
/// would it be?).
pub fn parse(text: &str) -> Result<Credentials, Parse> {
    let mut creds = Credentials::default();
    let mut section: Option<Section> = None;
    for (i, raw) in text.lines().enumerate() {
        let (n, line) = (i + 1, raw.trim());
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[') {
            let Some(name) = name
                .strip_suffix(']')
                .map(str::trim)
                .filter(|s| !s.is_empty())
            else {
                return Err(Parse::Syntax(
                    n,
                    format!("'{line}' is not a [profile] header"),
                ));
            };
            if let Some(done) = section.take() {
                done.finish(&mut creds)?;
            }
            section = Some(Section {
                name: name.to_string(),
                line: n,
                id: None,
                secret: None,
            });
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(Parse::Syntax(
                n,
                "expected 'name = value' or a [profile] header".into(),
            ));
        };
        let Some(current) = section.as_mut() else {
            return Err(Parse::Syntax(
                n,
                format!("'{}' comes before any [profile] header", key.trim()),
            ));
        };
        current.set(n, key.trim(), value.trim())?;
    }
    if let Some(done) = section {
        done.finish(&mut creds)?;
    }
    if creds.is_empty() {
        return Err(Parse::Empty);
    }
    Ok(creds)
}

/// A `[profile]` being read.
struct Section {
    name: String,
    line: usize,
    id: Option<(usize, String)>,
    secret: Option<String>,
}

impl Section {
    fn set(&mut self, n: usize, key: &str, value: &str) -> Result<(), Parse> {
        let slot = match key {
            "aws_access_key_id" => {
                if value.is_empty()
                    || !value
                        .bytes()
                        .all(|b| b.is_ascii_graphic() && b != b'/' && b != b',')
                {
                    return Err(Parse::Syntax(
                        n,
                        "aws_access_key_id must be printable ASCII without spaces, '/' or ','"
                            .into(),
                    ));
                }
                let old = self.id.replace((n, value.to_string()));
                old.map(|_| ())
            }
            "aws_secret_access_key" => {
                if value.is_empty() || value.chars().any(char::is_whitespace) {
                    return Err(Parse::Syntax(
                        n,
                        "aws_secret_access_key must be non-empty, without spaces".into(),
                    ));
                }
                self.secret.replace(value.to_string()).map(|_| ())
            }
            _ => return Ok(()),
        };
        match slot {
            Some(()) => Err(Parse::Syntax(
                n,
                format!("{key} set twice in [{}]", self.name),
            )),
            None => Ok(()),
        }
    }

    fn finish(self, creds: &mut Credentials) -> Result<(), Parse> {
        let (id_line, id, secret) = match (self.id, self.secret) {
            (None, None) => return Ok(()),
            (Some((line, id)), Some(secret)) => (line, id, secret),
            (Some(_), None) => {
                return Err(Parse::Syntax(
                    self.line,
                    format!("[{}] has no aws_secret_access_key", self.name),
                ))
            }
            (None, Some(_)) => {
                return Err(Parse::Syntax(
                    self.line,
                    format!("[{}] has no aws_access_key_id", self.name),
                ))
            }
        };
        if let Some(other) = creds.keys.get(&id) {
            return Err(Parse::Syntax(
                id_line,
                format!(
                    "access key '{id}' of [{}] is also in [{}]",
                    self.name, other.profile
                ),
            ));
        }
        creds.keys.insert(
            id,
            Key {
                profile: self.name,
                secret,
            },
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const TWO: &str = "# lab keys\n[default]\naws_access_key_id = AKIADEFAULT\n\
        aws_secret_access_key = wJalr/K7+EXAMPLE\nregion = us-east-1\n\n\
        [ci]\r\naws_access_key_id=AKIACI\r\naws_secret_access_key=ci-secret\r\n";

    fn syntax(text: &str) -> (usize, String) {
        match parse(text) {
            Err(Parse::Syntax(line, message)) => (line, message),
            other => panic!("expected a syntax error for {text:?}, got {other:?}"),
        }
    }

    #[test]
    fn reads_several_profiles_ignoring_other_keys() {
        let c = parse(TWO).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c.secret("AKIADEFAULT"), Some("wJalr/K7+EXAMPLE"));
        assert_eq!(c.secret("AKIACI"), Some("ci-secret"));
        assert_eq!(c.secret("nope"), None);
        let shown = format!("{c:?}");
        assert!(
            shown.contains("AKIACI") && !shown.contains("ci-secret"),
            "{shown}"
        );
    }

    #[test]
    fn refuses_bad_files_naming_the_line() {
        assert_eq!(syntax("aws_access_key_id = x\n").0, 1);
        assert_eq!(syntax("[a]\nnonsense\n").0, 2);
        assert!(syntax("[a\n").1.contains("[profile]"));
        assert!(syntax("[]\n").1.contains("[profile]"));
        let (line, msg) = syntax("[a]\naws_access_key_id = k\n");
        assert!(
            line == 1 && msg.contains("no aws_secret_access_key"),
            "{msg}"
        );
        assert!(syntax("[a]\naws_secret_access_key = s\n")
            .1
            .contains("no aws_access_key_id"));
        let twice =
            "[a]\naws_access_key_id = k\naws_access_key_id = j\naws_secret_access_key = s\n";
        assert_eq!(
            syntax(twice),
            (3, "aws_access_key_id set twice in [a]".into())
        );
        let dup = "[a]\naws_access_key_id=k\naws_secret_access_key=s\n[b]\naws_access_key_id=k\naws_secret_access_key=t\n";
        let (line, msg) = syntax(dup);
        assert!(line == 5 && msg.contains("also in [a]"), "{line} {msg}");
        assert!(
            syntax("[a]\naws_access_key_id = a/b\naws_secret_access_key = s\n")
                .1
                .contains("'/'")
        );
        assert!(
            syntax("[a]\naws_access_key_id = k\naws_secret_access_key = s t\n")
                .1
                .contains("spaces")
        );
        assert_eq!(
            parse("# nothing\n[a]\nregion = x\n").err(),
            Some(Parse::Empty)
        );
        assert_eq!(parse("").err(), Some(Parse::Empty));
    }

    #[test]
    fn the_file_must_be_private_small_and_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        std::fs::write(&path, TWO).unwrap();
        let chmod =
            |mode| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        chmod(0o600);
        assert_eq!(Credentials::from_file(&path).unwrap().len(), 2);
        for loose in [0o644, 0o620, 0o604] {
            chmod(loose);
            let err = Credentials::from_file(&path).unwrap_err().to_string();
            assert!(
                err.contains("chmod 600") && err.contains(&*path.to_string_lossy()),
                "{err}"
            );
        }
        chmod(0o600);
        std::fs::write(&path, "[a]\naws_access_key_id = k\nbad line\n").unwrap();
        let err = Credentials::from_file(&path).unwrap_err().to_string();
        assert!(err.contains(&format!("{}:3:", path.display())), "{err}");
        std::fs::write(&path, b"[a]\n\xff\n").unwrap();
        assert!(Credentials::from_file(&path)
            .unwrap_err()
            .to_string()
            .contains("UTF-8"));
        std::fs::write(&path, vec![b'#'; MAX_FILE_BYTES as usize + 1]).unwrap();
        assert!(Credentials::from_file(&path)
            .unwrap_err()
            .to_string()
            .contains("over the limit"));
        let missing = Credentials::from_file(&dir.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("nope") && missing.contains("No such file"),
            "{missing}"
        );
        let err = Credentials::from_file(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
    }
}
