//! The data directory: private to its owner, and held by one server at a time.
//!
//! - **Private.** Created (or tightened) to mode 0700; the files in it (`keys.json`,
//!   `caches.json`, `admin.key`, the caches' SQLite files) are written 0600.
//! - **One server.** A server holds an exclusive lock on `DATA/lock` for as long as it runs and
//!   writes its process id there; a second server on the same directory refuses to start and
//!   names the holder. The lock is the operating system's (`flock`): it goes with the process,
//!   so a killed server leaves nothing to clean up.

use omnicache_core::{Error, ErrorKind, Result};
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::Path;

/// The held lock on a data directory; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Creates `dir` if needed, makes it private, and takes its lock.
pub fn open(dir: &Path) -> Result<DataDirLock> {
    let shown = dir.display();
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| Error::from(e).context(format!("creating the data directory {shown}")))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| {
            Error::from(e).context(format!("making the data directory {shown} private (0700)"))
        })?;
    }
    let path = dir.join("lock");
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&path)
        .map_err(|e| Error::from(e).context(format!("opening {}", path.display())))?;
    if file.try_lock().is_err() {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        let holder = holder.trim();
        let holder = if holder.is_empty() { "another process" } else { holder };
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "the data directory {shown} is in use by {holder}; stop that server or give this one another --data directory"
            ),
        ));
    }
    let me = format!("omnicache pid {}", std::process::id());
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = file.write_all(me.as_bytes());
    Ok(DataDirLock { _file: file })
}

/// The audit log of the data directory (`audit.log`), chained under the HMAC key in
/// `audit.key` (32 random bytes, made on first start, mode 0600; refused if others may read it).
pub(crate) fn open_audit(dir: &Path) -> Result<omnicache_security::audit::AuditLog> {
    let key_path = dir.join("audit.key");
    let key = if key_path.exists() {
        omnicache_security::files::check_private(&key_path)?;
        std::fs::read(&key_path)
            .map_err(|e| Error::from(e).context(format!("reading {}", key_path.display())))?
    } else {
        use ring::rand::SecureRandom as _;
        let mut key = vec![0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| Error::new(ErrorKind::Unavailable, "the system's CSPRNG failed"))?;
        omnicache_security::files::write_private(&key_path, &key)?;
        key
    };
    let path = dir.join("audit.log");
    match omnicache_security::audit::AuditLog::open(&path, &key) {
        Err(e) if e.kind() == ErrorKind::Corrupt => {
            // A log that does not verify (tampered, or cut by a crash mid-record) is kept as
            // evidence under another name, and a new chain starts with a record saying so:
            // the server still starts, and the break is on record.
            let secs = omnicache_core::Clock::now(&omnicache_core::SystemClock) / 1_000_000_000;
            let aside = dir.join(format!("audit.log.broken-{secs}"));
            std::fs::rename(&path, &aside)
                .map_err(|e| Error::from(e).context(format!("moving {} aside", path.display())))?;
            eprintln!("WARNING: {e}; kept as {}, a new audit log starts", aside.display());
            let log = omnicache_security::audit::AuditLog::open(&path, &key)?;
            let entry = omnicache_security::audit::AuditEntry {
                actor: "-".into(),
                action: "audit.restart".into(),
                cache: None,
                target: Some(aside.display().to_string()),
                outcome: e.to_string(),
            };
            log.append(entry, secs * 1_000)?;
            Ok(log)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_and_told_who_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let held = open(&data).unwrap();
        let err = open(&data).unwrap_err().to_string();
        assert!(err.contains("in use by omnicache pid"), "{err}");
        assert!(err.contains(&std::process::id().to_string()), "{err}");
        drop(held);
        open(&data).expect("free again once the holder is gone");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&data).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "the data directory is private");
        }
    }
}
