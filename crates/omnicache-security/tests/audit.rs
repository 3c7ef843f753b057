//! The audit log's chain: intact logs verify, and each kind of tampering is caught at its
//! first bad line: an edited, deleted, reordered or inserted record, a cut file (against a saved
//! head), a line cut in half, another key.

use omnicache_security::audit::{verify, AuditEntry, AuditLog};
use std::path::Path;

const KEY: &[u8] = b"a 32-byte audit key, for tests!!";

fn entry(i: u32) -> AuditEntry {
    AuditEntry {
        actor: "admin".into(),
        action: "cache.clear".into(),
        cache: Some(format!("c{i}")),
        target: None,
        outcome: "ok".into(),
    }
}

fn write_log(path: &Path, n: u32) -> omnicache_security::audit::AuditHead {
    let log = AuditLog::open(path, KEY).unwrap();
    for i in 0..n {
        log.append(entry(i), 1_700_000_000_000 + u64::from(i)).unwrap();
    }
    log.head()
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap().lines().map(String::from).collect()
}

fn rewrite(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

fn first_bad(path: &Path) -> u64 {
    verify(path, KEY).unwrap().expect_err("tampering must be caught").line
}

#[test]
fn an_intact_log_verifies_and_reopening_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let head = write_log(&path, 5);
    assert_eq!(head.seq, 5);
    assert_eq!(verify(&path, KEY).unwrap().unwrap(), head);
    let log = AuditLog::open(&path, KEY).unwrap();
    let r = log.append(entry(9), 1).unwrap();
    assert_eq!((r.seq, r.prev.clone()), (6, head.hash));
    assert_eq!(verify(&path, KEY).unwrap().unwrap().seq, 6);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}

#[test]
fn every_kind_of_tampering_is_caught_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    write_log(&path, 6);
    let original = lines(&path);

    let mut edited = original.clone();
    edited[2] = edited[2].replace("\"c2\"", "\"c9\"");
    rewrite(&path, &edited);
    assert_eq!(first_bad(&path), 3, "edited");

    let mut deleted = original.clone();
    deleted.remove(3);
    rewrite(&path, &deleted);
    assert_eq!(first_bad(&path), 4, "deleted");

    let mut reordered = original.clone();
    reordered.swap(1, 2);
    rewrite(&path, &reordered);
    assert_eq!(first_bad(&path), 2, "reordered");

    let mut inserted = original.clone();
    inserted.insert(2, original[1].clone());
    rewrite(&path, &inserted);
    assert_eq!(first_bad(&path), 3, "inserted");

    let mut cut_line = original.clone();
    cut_line[4].truncate(20);
    rewrite(&path, &cut_line);
    assert_eq!(first_bad(&path), 5, "cut mid-line");

    rewrite(&path, &original);
    assert!(verify(&path, b"another key").unwrap().is_err(), "another key");
    assert!(
        AuditLog::open(&path, b"another key").is_err(),
        "a log that does not verify is refused"
    );

    // A cut at a record boundary verifies, but its head is behind the one saved earlier.
    let saved = verify(&path, KEY).unwrap().unwrap();
    rewrite(&path, &original[..4]);
    let now = verify(&path, KEY).unwrap().unwrap();
    assert!(now.seq < saved.seq && now.hash != saved.hash, "truncation shows against the head");
}
