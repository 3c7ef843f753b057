//! One error type for every OmniCache boundary.

use std::fmt;

/// What went wrong, broadly. Match on this, not on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller passed something that cannot be accepted (bad config, bad key, bad size).
    InvalidInput,
    /// Stored bytes failed verification: bad magic, version, length or checksum.
    Corrupt,
    /// A value could not be encoded or decoded by a codec or transform.
    Codec,
    /// A tier or remote component is unavailable (down, breaker open, disk full).
    Unavailable,
    /// An operation did not finish in time.
    Timeout,
    /// Something was not found where it had to be.
    NotFound,
    /// An I/O failure.
    Io,
    /// A loader panicked or was cancelled before producing a value.
    LoaderFailed,
    /// A write guard (a personal-data policy) refused the value; the message says why, never
    /// what the value held.
    Rejected,
    /// Anything else; the message says what.
    Other,
}

impl ErrorKind {
    /// A short, stable, snake_case name, for logs, metrics and JSON error codes.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::Codec => "codec",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Io => "io",
            ErrorKind::LoaderFailed => "loader_failed",
            ErrorKind::Rejected => "rejected",
            ErrorKind::Other => "other",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The error of every fallible OmniCache operation: a kind, a message and an optional source.
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<BoxError>,
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with a human-readable message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into(), source: None }
    }

    /// Shorthand for [`ErrorKind::InvalidInput`].
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// Shorthand for [`ErrorKind::Corrupt`].
    pub fn corrupt(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Corrupt, message)
    }

    /// Attaches the underlying cause.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Prefixes the message with context ("reading entry `k`: ...").
    #[must_use]
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the source chain.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.kind)?;
        if let Some(source) = &self.source {
            // A source the message already says (an I/O error made into ours) is not repeated.
            let said = source.to_string();
            if !self.message.contains(&said) {
                write!(f, ": {said}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        let kind = match e.kind() {
            std::io::ErrorKind::TimedOut => ErrorKind::Timeout,
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => {
                ErrorKind::InvalidInput
            }
            _ => ErrorKind::Io,
        };
        Error::new(kind, e.to_string()).with_source(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = Error::from(io).context("creating the data directory /x");
        let shown = e.to_string();
        assert_eq!(shown.matches("no such file").count(), 1, "{shown}");
        let other =
            Error::new(ErrorKind::Io, "sqlite").with_source(std::io::Error::other("disk I/O"));
        assert!(other.to_string().ends_with(": disk I/O"), "a source that adds something stays");
    }

    #[test]
    fn display_has_message_kind_and_source() {
        let io = std::io::Error::other("disk on fire");
        let e = Error::new(ErrorKind::Io, "writing entry").with_source(io).context("tier disk");
        assert_eq!(e.kind(), ErrorKind::Io);
        assert_eq!(e.to_string(), "tier disk: writing entry (io): disk on fire");
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn io_errors_map_to_kinds() {
        let e: Error = std::io::Error::from(std::io::ErrorKind::TimedOut).into();
        assert_eq!(e.kind(), ErrorKind::Timeout);
        let e: Error = std::io::Error::from(std::io::ErrorKind::NotFound).into();
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }
}
