//! Reading traces: one key per line (optionally gzip), CSV with a chosen column, ARC `.lis`
//! (start/count expanded), LIRS, and libCacheSim's binary `oracleGeneral`. Every parser reports
//! malformed input with the line or byte offset and never panics.

use omnicache_core::{Error, Result};
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

/// A trace's layout on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceFormat {
    /// One key per line: integers (signed or not) are used as they are, any other text is hashed.
    Lines,
    /// Comma-separated values; the key is in `column` (0-based), the first row skipped if
    /// `header`.
    Csv {
        /// The key's column, 0-based.
        column: usize,
        /// Whether the first row is a header.
        header: bool,
    },
    /// ARC paper traces (`.lis`): `start count ...` per line, expanded to `start..start+count`.
    Arc,
    /// LIRS paper traces: one block number per line; a lone `*` line ends the trace.
    Lirs,
    /// libCacheSim `oracleGeneral`: packed little-endian records of (u32 time, u64 object id,
    /// u32 size, i64 next access), 24 bytes each.
    OracleGeneral,
}

impl TraceFormat {
    /// Reads a `--trace-format` value: `lines`, `csv:COLUMN` (with a header row), `arc`,
    /// `lirs`, `oracle` or `oracleGeneral`.
    pub fn from_flag(s: &str) -> Option<TraceFormat> {
        Some(match s {
            "lines" => TraceFormat::Lines,
            "arc" => TraceFormat::Arc,
            "lirs" => TraceFormat::Lirs,
            "oracle" | "oracleGeneral" => TraceFormat::OracleGeneral,
            other => {
                let col = other.strip_prefix("csv:")?;
                TraceFormat::Csv { column: col.parse().ok()?, header: true }
            }
        })
    }

    /// Guesses from the file name: `.lis` ARC, `.csv` CSV (column 0, header), `oracleGeneral`
    /// or `.bin` binary, `lirs` in the name or a `.trace` ending LIRS, else lines. A `.gz`
    /// suffix is looked through.
    pub fn guess(path: &Path) -> TraceFormat {
        let name =
            path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_ascii_lowercase();
        let name = name.strip_suffix(".gz").unwrap_or(&name);
        if name.ends_with(".lis") {
            TraceFormat::Arc
        } else if name.ends_with(".csv") {
            TraceFormat::Csv { column: 0, header: true }
        } else if name.contains("oraclegeneral") || name.ends_with(".bin") {
            TraceFormat::OracleGeneral
        } else if name.contains("lirs") || name.ends_with(".trace") {
            TraceFormat::Lirs
        } else {
            TraceFormat::Lines
        }
    }
}

/// A trace ready to replay: keys renamed to dense ids `0..unique`, in access order.
#[derive(Debug, Clone)]
pub struct Trace {
    /// A name for reports (the file stem).
    pub name: String,
    /// Dense key ids, in access order.
    pub ids: Vec<u32>,
    /// Each dense id's 64-bit hash, as a cache's hasher would give it.
    pub hashes: Vec<u64>,
}

impl Trace {
    /// A trace from raw 64-bit keys.
    pub fn from_keys(name: impl Into<String>, keys: impl IntoIterator<Item = u64>) -> Trace {
        let mut dense: HashMap<u64, u32> = HashMap::new();
        let mut hashes = Vec::new();
        let ids = keys
            .into_iter()
            .map(|k| {
                *dense.entry(k).or_insert_with(|| {
                    hashes.push(super::mix(k));
                    (hashes.len() - 1) as u32
                })
            })
            .collect();
        Trace { name: name.into(), ids, hashes }
    }

    /// Requests in the trace.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True for an empty trace.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Distinct keys.
    pub fn unique(&self) -> usize {
        self.hashes.len()
    }

    /// Reads a trace file (gzip is detected by its magic bytes).
    pub fn open(path: &Path, format: &TraceFormat) -> Result<Trace> {
        let mut raw = Vec::new();
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_end(&mut raw))
            .map_err(|e| Error::from(e).context(format!("reading {}", path.display())))?;
        let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut out).map_err(|e| {
                Error::invalid_input(format!("{}: not valid gzip: {e}", path.display()))
            })?;
            out
        } else {
            raw
        };
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(|n| n.split('.').next().unwrap_or(n).to_string())
            .unwrap_or_else(|| "trace".into());
        let keys = parse(&bytes, format).map_err(|e| e.context(path.display()))?;
        Ok(Trace::from_keys(name, keys))
    }
}

/// Parses trace bytes into raw keys.
pub fn parse(bytes: &[u8], format: &TraceFormat) -> Result<Vec<u64>> {
    match format {
        TraceFormat::OracleGeneral => parse_oracle(bytes),
        _ => {
            let text = std::str::from_utf8(bytes).map_err(|e| {
                Error::invalid_input(format!("byte offset {}: not UTF-8 text", e.valid_up_to()))
            })?;
            match format {
                TraceFormat::Lines => parse_lines(text, false),
                TraceFormat::Lirs => parse_lines(text, true),
                TraceFormat::Csv { column, header } => parse_csv(text, *column, *header),
                TraceFormat::Arc => parse_arc(text),
                TraceFormat::OracleGeneral => unreachable!("handled above"),
            }
        }
    }
}

fn key_of(s: &str) -> u64 {
    if let Ok(k) = s.parse::<u64>() {
        k
    } else if let Ok(k) = s.parse::<i64>() {
        k as u64
    } else {
        // FNV-1a: stable across runs and platforms.
        s.bytes()
            .fold(0xCBF2_9CE4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3))
    }
}

fn parse_lines(text: &str, lirs: bool) -> Result<Vec<u64>> {
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if lirs {
            if line == "*" {
                break;
            }
            let k = line.parse::<i64>().map_err(|_| {
                Error::invalid_input(format!(
                    "line {}: expected a block number, found {line:?}",
                    n + 1
                ))
            })?;
            keys.push(k as u64);
        } else {
            keys.push(key_of(line));
        }
    }
    Ok(keys)
}

fn parse_csv(text: &str, column: usize, header: bool) -> Result<Vec<u64>> {
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate().skip(usize::from(header)) {
        if line.trim().is_empty() {
            continue;
        }
        let field = line.split(',').nth(column).ok_or_else(|| {
            Error::invalid_input(format!(
                "line {}: no column {column} (the row has {} columns)",
                n + 1,
                line.split(',').count()
            ))
        })?;
        let field = field.trim().trim_matches('"');
        if field.is_empty() {
            return Err(Error::invalid_input(format!(
                "line {}: empty key in column {column}",
                n + 1
            )));
        }
        keys.push(key_of(field));
    }
    Ok(keys)
}

/// Expanding a `.lis` line may not produce more than this many keys (a corrupt count would
/// otherwise exhaust memory).
const MAX_ARC_RUN: u64 = 1 << 24;

fn parse_arc(text: &str) -> Result<Vec<u64>> {
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut fields = line.split_whitespace();
        let Some(start) = fields.next() else { continue };
        let bad = |what: &str| Error::invalid_input(format!("line {}: {what} in {line:?}", n + 1));
        let start: u64 = start.parse().map_err(|_| bad("bad start block"))?;
        let count: u64 = fields
            .next()
            .ok_or_else(|| bad("missing count"))?
            .parse()
            .map_err(|_| bad("bad count"))?;
        if count > MAX_ARC_RUN {
            return Err(bad("count too large"));
        }
        keys.extend((0..count).map(|i| start.wrapping_add(i)));
    }
    Ok(keys)
}

const ORACLE_RECORD: usize = 24;

fn parse_oracle(bytes: &[u8]) -> Result<Vec<u64>> {
    if !bytes.len().is_multiple_of(ORACLE_RECORD) {
        let whole = bytes.len() / ORACLE_RECORD * ORACLE_RECORD;
        return Err(Error::invalid_input(format!(
            "byte offset {whole}: truncated oracleGeneral record ({} of {ORACLE_RECORD} bytes)",
            bytes.len() - whole
        )));
    }
    Ok(bytes
        .chunks_exact(ORACLE_RECORD)
        .map(|r| {
            let mut id = [0u8; 8];
            id.copy_from_slice(&r[4..12]);
            u64::from_le_bytes(id)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use omnicache_core::ErrorKind;

    #[test]
    fn lines_accept_unsigned_signed_and_text_keys() {
        let keys = parse(b"1\n-1\n\n# comment\nuser:7\n1\n", &TraceFormat::Lines).unwrap();
        assert_eq!(keys.len(), 4);
        assert_eq!(keys[0], 1);
        assert_eq!(keys[1], u64::MAX);
        assert_eq!(keys[3], 1);
        let t = Trace::from_keys("t", keys);
        assert_eq!((t.len(), t.unique()), (4, 3));
        assert_eq!(t.ids, vec![0, 1, 2, 0]);
    }

    #[test]
    fn arc_lines_expand() {
        let keys = parse(b"10 3 0 1\n5 1 0 2\n", &TraceFormat::Arc).unwrap();
        assert_eq!(keys, vec![10, 11, 12, 5]);
        let e = parse(b"10 3 0 1\nx 1\n", &TraceFormat::Arc).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().contains("line 2"), "{e}");
        let e = parse(b"1\n", &TraceFormat::Arc).unwrap_err();
        assert!(e.message().contains("line 1: missing count"), "{e}");
        let e = parse(b"1 99999999999\n", &TraceFormat::Arc).unwrap_err();
        assert!(e.message().contains("too large"), "{e}");
    }

    #[test]
    fn lirs_stops_at_star_and_rejects_text() {
        assert_eq!(parse(b"3\n4\n*\n5\n", &TraceFormat::Lirs).unwrap(), vec![3, 4]);
        let e = parse(b"3\nabc\n", &TraceFormat::Lirs).unwrap_err();
        assert!(e.message().contains("line 2"), "{e}");
    }

    #[test]
    fn csv_picks_a_column_and_names_bad_rows() {
        let f = TraceFormat::Csv { column: 1, header: true };
        assert_eq!(parse(b"t,key\n1,7\n2,8\n", &f).unwrap(), vec![7, 8]);
        let e = parse(b"t,key\n1,7\n2\n", &f).unwrap_err();
        assert!(e.message().contains("line 3: no column 1"), "{e}");
        let e = parse(b"t,key\n1,\n", &f).unwrap_err();
        assert!(e.message().contains("line 2: empty key"), "{e}");
    }

    #[test]
    fn oracle_general_records_and_truncation() {
        let mut b = Vec::new();
        for (t, id) in [(1u32, 42u64), (2, 7)] {
            b.extend_from_slice(&t.to_le_bytes());
            b.extend_from_slice(&id.to_le_bytes());
            b.extend_from_slice(&100u32.to_le_bytes());
            b.extend_from_slice(&(-1i64).to_le_bytes());
        }
        assert_eq!(parse(&b, &TraceFormat::OracleGeneral).unwrap(), vec![42, 7]);
        b.push(0);
        let e = parse(&b, &TraceFormat::OracleGeneral).unwrap_err();
        assert!(e.message().contains("byte offset 48"), "{e}");
    }

    #[test]
    fn non_utf8_text_is_an_error_with_the_offset() {
        let e = parse(b"12\n\xff\n", &TraceFormat::Lines).unwrap_err();
        assert!(e.message().contains("byte offset 3"), "{e}");
    }

    #[test]
    fn formats_are_guessed_from_names() {
        assert_eq!(TraceFormat::guess(Path::new("a/OLTP.lis")), TraceFormat::Arc);
        assert_eq!(
            TraceFormat::guess(Path::new("x.csv.gz")),
            TraceFormat::Csv { column: 0, header: true }
        );
        assert_eq!(
            TraceFormat::guess(Path::new("w.oracleGeneral.bin")),
            TraceFormat::OracleGeneral
        );
        assert_eq!(TraceFormat::guess(Path::new("lirs_multi2.trace.gz")), TraceFormat::Lirs);
        assert_eq!(TraceFormat::guess(Path::new("k.keys.gz")), TraceFormat::Lines);
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            for f in [
                TraceFormat::Lines,
                TraceFormat::Lirs,
                TraceFormat::Arc,
                TraceFormat::Csv { column: 2, header: false },
                TraceFormat::OracleGeneral,
            ] {
                let _ = parse(&bytes, &f);
            }
        }
    }
}
