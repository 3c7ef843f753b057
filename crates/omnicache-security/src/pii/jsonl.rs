//! The scan's wire format, shared by `omnicache security scan` and `POST /security/scan`: JSON
//! Lines of `{"id": ..., "text": "..."}` in, one `{"id", "kind", "start", "end", "confidence"}`
//! line per finding out, byte offsets into the UTF-8 text.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Detector, PiiKind};

/// One input record.
#[derive(Debug, Deserialize)]
struct Record {
    /// Echoed as given (a string, usually).
    id: Value,
    text: String,
}

/// One finding as printed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanLine {
    /// The record's id.
    pub id: Value,
    /// What was found.
    pub kind: PiiKind,
    /// Byte offset of the first byte in the record's text.
    pub start: usize,
    /// Byte offset past the last byte.
    pub end: usize,
    /// From 0 to 1, two decimals.
    pub confidence: f64,
}

/// What became of one input line.
#[derive(Debug)]
pub enum LineResult {
    /// Scanned: its findings (maybe none).
    Scanned(Vec<ScanLine>),
    /// Blank; nothing to do.
    Blank,
    /// Not UTF-8: skipped and counted, never guessed at.
    NotUtf8,
    /// Not a record: why (the text is never repeated).
    Malformed(String),
}

/// Scans one line of the input.
pub fn scan_line(detector: &Detector, line: &[u8]) -> LineResult {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Ok(line) = std::str::from_utf8(line) else { return LineResult::NotUtf8 };
    if line.trim().is_empty() {
        return LineResult::Blank;
    }
    let record: Record = match serde_json::from_str(line) {
        Ok(r) => r,
        Err(e) => {
            let what = if e.is_data() {
                "a record needs \"id\" and \"text\" (a string)"
            } else {
                "not JSON"
            };
            return LineResult::Malformed(format!("{what} (column {})", e.column()));
        }
    };
    let findings = detector
        .scan(&record.text)
        .into_iter()
        .map(|f| ScanLine {
            id: record.id.clone(),
            kind: f.kind,
            start: f.start,
            end: f.end,
            confidence: (f64::from(f.confidence) * 100.0).round() / 100.0,
        })
        .collect();
    LineResult::Scanned(findings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_in_findings_out() {
        let d = Detector::new();
        let LineResult::Scanned(out) =
            scan_line(&d, br#"{"id": "a1", "text": "mail ana@example.org"}"#)
        else {
            panic!("scanned")
        };
        assert_eq!(out.len(), 1);
        assert_eq!(
            serde_json::to_string(&out[0]).unwrap(),
            r#"{"id":"a1","kind":"email","start":5,"end":20,"confidence":0.97}"#
        );
        assert!(matches!(scan_line(&d, b"  "), LineResult::Blank));
        assert!(matches!(scan_line(&d, b"{\"id\":1,\"text\":\"\xff\"}"), LineResult::NotUtf8));
        let LineResult::Malformed(why) =
            scan_line(&d, br#"{"id": "x", "body": "4111 1111 1111 1111"}"#)
        else {
            panic!()
        };
        assert!(why.contains("\"text\"") && !why.contains("4111"), "{why}");
    }
}
