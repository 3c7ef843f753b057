//! The configuration: loading, layering, validation, the example file.

use super::*;
use omnicache_security::pii::{PiiAction, PiiKind};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[test]
fn the_policy_names_of_the_schema_are_the_strategies_names() {
    for name in omnicache_strategies::NAMES {
        let parsed: PolicyName = serde_json::from_value(serde_json::json!(name))
            .unwrap_or_else(|e| panic!("{name} is missing from PolicyName: {e}"));
        assert_eq!(serde_json::to_value(parsed).unwrap(), serde_json::json!(name));
        assert_eq!(parsed.name(), *name);
    }
    assert_eq!(omnicache_strategies::NAMES.len(), 15, "PolicyName lists 15 names");
}

#[test]
fn misspelled_variables_are_found_and_other_tools_are_not() {
    let odd = ServerConfig::unknown_env(env(&[
        ("OMNICACHE_LISTN", "x"),
        ("OMNICACHE_LISTEN", "127.0.0.1:1"),
        ("OMNICACHE_CACHES__USERS__L1_CAPACITY", "7"),
        ("OMNICACHE_API_KEY", "k"),
        ("OMNICACHE_TOOLS", "/t"),
        ("PATH", "/bin"),
    ]));
    assert_eq!(odd, vec!["OMNICACHE_LISTN".to_string()]);
}

#[test]
fn the_example_config_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/omnicache.toml");
    let c = ServerConfig::load(Some(&path), env(&[])).unwrap();
    assert!(c.caches.contains_key("sessions"), "{c:?}");
    let pii = c.caches["sessions"].pii.as_ref().expect("the example shows a PII policy");
    assert_eq!(pii.policy().action_for(PiiKind::CreditCard), PiiAction::Reject);
    assert_eq!(pii.policy().action_for(PiiKind::Email), PiiAction::Tag, "the default");
    // An example holds no working credential: no key, and no SHA-256 anywhere in it.
    assert!(c.keys.is_empty(), "the example declares a key");
    let text = std::fs::read_to_string(&path).unwrap();
    let hex_run = text.split(|ch: char| !ch.is_ascii_hexdigit()).any(|w| w.len() >= 64);
    assert!(!hex_run, "the example holds a key hash");
}

#[test]
fn a_pii_policy_with_an_unknown_action_or_kind_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    for (body, names) in [
        ("[caches.u.pii]\nemail = \"hide\"\n", "caches.u.pii.email"),
        ("[caches.u.pii]\nssn = \"reject\"\n", "us_ssn"),
        ("[caches.u.pii]\nmin_confidence = 2.0\n", "caches.u.pii.min_confidence"),
        ("[caches.u]\nsubject_retention_secs = -1\n", "caches.u.subject_retention_secs"),
        ("[caches.u]\nsubject_keys = true\n", "caches.u.subject_keys"),
    ] {
        std::fs::write(&file, body).unwrap();
        let err = ServerConfig::load(Some(&file), env(&[])).unwrap_err().to_string();
        assert!(err.contains(names), "{body}: {err}");
    }
}

#[test]
fn environment_variables_override_every_level() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:9000\"\n[caches.users]\nl1_capacity = 5\n")
        .unwrap();
    let c = ServerConfig::load(
        Some(&file),
        env(&[
            ("OMNICACHE_LISTEN", "127.0.0.1:9001"),
            ("OMNICACHE_CACHES__USERS__L1_CAPACITY", "7"),
            ("OMNICACHE_CACHES__USERS__TIERS__0__KIND", "disk"),
            ("OMNICACHE_CACHES__USERS__TIERS__0__WRITE", "behind"),
            ("OMNICACHE_DATA", "/tmp/x"),
            ("OMNICACHE_WORKERS", "3"),
            ("OMNICACHE_API_KEY", "not config"),
            ("OMNICACHE_TOOLS", "/not/config/either"),
            ("PATH", "/bin"),
        ]),
    )
    .unwrap();
    assert_eq!(c.listen.port(), 9001);
    assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
    assert_eq!(c.workers, Some(3));
    let users = &c.caches["users"];
    assert_eq!(users.l1_capacity, Some(7));
    assert_eq!(users.tiers.as_ref().unwrap()[0].write, WriteMode::Behind);
}

#[test]
fn bad_configs_name_the_file_or_variable_the_key_and_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    let cases: &[(&str, &str)] = &[
        ("listen = \"nowhere\"", "listen"),
        ("[caches.users]\nl1_capacity = \"many\"", "caches.users.l1_capacity"),
        ("[caches.users]\npolcy = \"lru\"", "unknown field `polcy`"),
        ("[caches.users]\npolicy = \"fifo\"", "caches.users.policy: unknown policy"),
        ("[caches.Users]\n", "caches.Users: a cache name"),
        ("[[caches.a.tiers]]\nkind = \"redis\"", "caches.a.tiers[0]: a redis tier needs url"),
        ("[[caches.a.tiers]]\nkind = \"disk\"\nbucket = \"b\"", "caches.a.tiers[0].bucket"),
        ("[[keys]]\nname = \"r\"\nsha256 = \"00\"\nscopes = [\"read\"]", "keys[0].sha256"),
        ("[tls]\ncert = \"/nope.pem\"\nkey = \"/nope.key\"", "tls.cert"),
        ("listen = ", "bad.toml"),
        ("workers = 0", "workers: must be at least 1"),
        ("workers = -2", "workers"),
    ];
    for (text, want) in cases {
        std::fs::write(&file, text).unwrap();
        let err = ServerConfig::load(Some(&file), env(&[])).unwrap_err().to_string();
        assert!(err.contains(want), "{text:?}: {err}");
        assert!(err.contains("bad.toml"), "{text:?} names the file: {err}");
    }
    let err = ServerConfig::load(None, env(&[("OMNICACHE_MAX_KEY_LEN", "lots")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("OMNICACHE_MAX_KEY_LEN") && err.contains("max_key_len"), "{err}");
    let err = ServerConfig::load(Some(Path::new("/no/such.toml")), env(&[])).unwrap_err();
    assert!(err.to_string().contains("/no/such.toml"), "{err}");
}
