//! A tamper-evident audit log: append-only JSON Lines, each record chained to the one before by
//! an HMAC-SHA256 under a key only the server holds, so an edited, deleted, reordered or
//! inserted record breaks the chain, and a cut file is caught against a saved head
//! ([`AuditLog::head`]).

use omnicache_core::{Error, ErrorKind, Result};
use ring::hmac;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The chain's value before the first record.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audited action. Never a secret: the actor is an API key's name, the target a key's
/// hash or a data subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// 1, 2, 3, ... with no gap.
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// Who: an API key's name, `"-"` when unauthenticated.
    pub actor: String,
    /// What: `key.create`, `cache.delete`, `auth.failure`, ...
    pub action: String,
    /// The cache concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<String>,
    /// What it was done to (a key's hash, a subject, a key name), if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `ok`, or why not.
    pub outcome: String,
    /// The previous record's hash (the genesis value for the first).
    pub prev: String,
    /// HMAC-SHA256 of this record without this field, hex.
    pub hash: String,
}

/// What a record says before it is chained.
#[derive(Debug, Clone, Default)]
pub struct AuditEntry {
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// The cache concerned.
    pub cache: Option<String>,
    /// The target.
    pub target: Option<String>,
    /// `ok`, or why not.
    pub outcome: String,
}

/// The bytes a record's HMAC covers: the record as JSON with an empty `hash`.
fn signed_bytes(r: &AuditRecord) -> Vec<u8> {
    let mut unsigned = r.clone();
    unsigned.hash = String::new();
    serde_json::to_vec(&unsigned).unwrap_or_default()
}

fn mac(key: &hmac::Key, r: &AuditRecord) -> String {
    hex(hmac::sign(key, &signed_bytes(r)).as_ref())
}

/// Whether `r.hash` is the HMAC of `r` under `key` (compared in constant time by `ring`).
fn authentic(key: &hmac::Key, r: &AuditRecord) -> bool {
    let tag: Option<Vec<u8>> = (0..r.hash.len())
        .step_by(2)
        .map(|i| r.hash.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect();
    tag.is_some_and(|t| hmac::verify(key, &signed_bytes(r), &t).is_ok())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where the chain stands: the last record's sequence number and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    /// The last record's `seq` (0 for an empty log).
    pub seq: u64,
    /// The last record's `hash` (the genesis value for an empty log).
    pub hash: String,
}

/// Why a log failed verification: the first bad line and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// 1-based line number.
    pub line: u64,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// Checks a whole log against `key`: every line a record, sequence numbers without a gap,
/// each record chained to the one before and its HMAC right. Returns the head, or the first
/// bad line. Compare the head with one saved earlier to catch a cut file.
pub fn verify(path: &Path, key: &[u8]) -> Result<std::result::Result<AuditHead, Broken>> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let file = std::fs::File::open(path)
        .map_err(|e| Error::from(e).context(format!("opening {}", path.display())))?;
    let mut head = AuditHead { seq: 0, hash: GENESIS.to_string() };
    for (i, line) in std::io::BufReader::new(file).split(b'\n').enumerate() {
        let n = i as u64 + 1;
        let line =
            line.map_err(|e| Error::from(e).context(format!("reading {}", path.display())))?;
        let broken = |reason: String| Ok(Err(Broken { line: n, reason }));
        let Ok(r) = serde_json::from_slice::<AuditRecord>(&line) else {
            return broken("not an audit record (edited or cut mid-line)".into());
        };
        if r.seq != head.seq + 1 {
            return broken(format!("sequence {} where {} was due", r.seq, head.seq + 1));
        }
        if r.prev != head.hash {
            return broken("not chained to the record before it".into());
        }
        if !authentic(&key, &r) {
            return broken("its hash does not match its contents".into());
        }
        head = AuditHead { seq: r.seq, hash: r.hash };
    }
    Ok(Ok(head))
}

/// An open audit log: appends chained records, each flushed to disk before `append` returns.
pub struct AuditLog {
    path: PathBuf,
    key: hmac::Key,
    sync: bool,
    state: Mutex<(std::fs::File, AuditHead)>,
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog").field("path", &self.path).finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens (or creates, mode 0600) the log at `path`, verifying what is there with `key`; a
    /// log that does not verify is refused, naming its first bad line.
    pub fn open(path: &Path, key: &[u8]) -> Result<AuditLog> {
        let head = if path.exists() {
            match verify(path, key)? {
                Ok(head) => head,
                Err(b) => {
                    return Err(Error::new(
                        ErrorKind::Corrupt,
                        format!("the audit log {} does not verify: {b}", path.display()),
                    ))
                }
            }
        } else {
            AuditHead { seq: 0, hash: GENESIS.to_string() }
        };
        let mut options = std::fs::OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let file = options
            .open(path)
            .map_err(|e| Error::from(e).context(format!("opening {}", path.display())))?;
        Ok(AuditLog {
            path: path.to_path_buf(),
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
            sync: true,
            state: Mutex::new((file, head)),
        })
    }

    /// Appends without flushing each record to disk: for building large logs in benchmarks and
    /// imports, never for a server's own log (a crash may then lose the last records).
    pub fn without_sync(mut self) -> AuditLog {
        self.sync = false;
        self
    }

    /// Appends `entry` at `time_ms`, chained and flushed; returns the record.
    pub fn append(&self, entry: AuditEntry, time_ms: u64) -> Result<AuditRecord> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (file, head) = &mut *state;
        let mut r = AuditRecord {
            seq: head.seq + 1,
            time_ms,
            actor: entry.actor,
            action: entry.action,
            cache: entry.cache,
            target: entry.target,
            outcome: entry.outcome,
            prev: head.hash.clone(),
            hash: String::new(),
        };
        r.hash = mac(&self.key, &r);
        let mut line = serde_json::to_vec(&r)
            .map_err(|e| Error::new(ErrorKind::Other, "encoding an audit record").with_source(e))?;
        line.push(b'\n');
        file.write_all(&line)
            .and_then(|()| if self.sync { file.sync_data() } else { Ok(()) })
            .map_err(|e| Error::from(e).context(format!("appending to {}", self.path.display())))?;
        *head = AuditHead { seq: r.seq, hash: r.hash.clone() };
        Ok(r)
    }

    /// Where the chain stands now.
    pub fn head(&self) -> AuditHead {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1.clone()
    }
}
