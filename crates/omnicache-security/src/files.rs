//! Files that hold secrets: private to their owner, checked before they are trusted.

use omnicache_core::{Error, Result};
use std::path::Path;

/// Refuses a file that others than its owner may read or write (mode & 0o077), naming it and
/// its mode: key files and the like.
#[cfg(unix)]
pub fn check_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::from(e).context(format!("reading the key file {}", path.display())))?;
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(Error::invalid_input(format!(
            "the key file {} may be read by others (mode {:o}); make it 0600",
            path.display(),
            mode & 0o777
        )));
    }
    Ok(())
}

/// Refuses a file others may read (no check off Unix).
#[cfg(not(unix))]
pub fn check_private(_path: &Path) -> Result<()> {
    Ok(())
}

/// Writes `bytes` to `path`, created with mode 0600 (on Unix) and flushed to disk.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut f = options
        .open(path)
        .map_err(|e| Error::from(e).context(format!("writing {}", path.display())))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::from(e).context(format!("writing {}", path.display())))
}
