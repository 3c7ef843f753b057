//! The alerting rules shipped for Prometheus users (deploy/prometheus/omnicache-rules.yml):
//! `promtool check rules` accepts them and `promtool test rules` runs their unit tests (firing
//! and not firing), and every metric they use is one the server exports.

use std::path::Path;
use std::process::Command;

fn promtool(args: &[&str]) -> std::process::Output {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/prometheus");
    Command::new("promtool").args(args).current_dir(dir).output().unwrap_or_else(|e| {
        panic!("promtool ({e}): install it with `apt-get install prometheus` (cargo xtask ci does)")
    })
}

#[test]
fn the_rules_check_and_their_unit_tests_pass() {
    for args in
        [["check", "rules", "omnicache-rules.yml"], ["test", "rules", "omnicache-rules.test.yml"]]
    {
        let out = promtool(&args);
        assert!(
            out.status.success(),
            "promtool {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn every_metric_the_rules_use_is_documented_as_exported() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let rules =
        std::fs::read_to_string(root.join("deploy/prometheus/omnicache-rules.yml")).unwrap();
    let docs = std::fs::read_to_string(root.join("docs/metrics.md")).unwrap();
    let used: std::collections::BTreeSet<&str> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.starts_with("omnicache_"))
        .collect();
    assert!(used.len() >= 4, "{used:?}");
    for series in used {
        // A histogram's series are its family's name and a suffix.
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| series.strip_suffix(s))
            .unwrap_or(series);
        assert!(
            docs.contains(&format!("`{series}`")) || docs.contains(&format!("`{family}`")),
            "{series} is used by a rule but not in docs/metrics.md"
        );
    }
}
