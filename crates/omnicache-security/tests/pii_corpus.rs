//! Precision and recall of the PII detector on the labeled corpus (tests/data/pii_corpus.jsonl,
//! made by tests/data/gen_pii_corpus.py): at least 0.97 for every kind, exact byte spans.

use std::collections::BTreeMap;

use omnicache_security::pii::{Detector, PiiKind};
use serde::Deserialize;

#[derive(Deserialize)]
struct Record {
    id: String,
    text: String,
    labels: Vec<Label>,
}

#[derive(Deserialize, PartialEq, Eq, PartialOrd, Ord, Clone, Copy)]
struct Label {
    kind: PiiKind,
    start: usize,
    end: usize,
}

#[derive(Default)]
struct Counts {
    tp: u32,
    fp: u32,
    fn_: u32,
}

fn corpus() -> Vec<Record> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/pii_corpus.jsonl");
    std::fs::read_to_string(path)
        .expect("the labeled corpus is checked in")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is a record"))
        .collect()
}

#[test]
fn precision_and_recall_are_at_least_0_97_for_every_kind() {
    let detector = Detector::new();
    let mut counts: BTreeMap<PiiKind, Counts> =
        PiiKind::ALL.iter().map(|k| (*k, Counts::default())).collect();
    let mut mistakes = Vec::new();
    for record in corpus() {
        let found: Vec<Label> = detector
            .scan(&record.text)
            .iter()
            .map(|f| Label { kind: f.kind, start: f.start, end: f.end })
            .collect();
        for label in &record.labels {
            if found.contains(label) {
                counts.get_mut(&label.kind).unwrap().tp += 1;
            } else {
                counts.get_mut(&label.kind).unwrap().fn_ += 1;
                mistakes.push(format!(
                    "missed {:?} {:?} in {}",
                    label.kind,
                    &record.text[label.start..label.end],
                    record.id
                ));
            }
        }
        for f in found.iter().filter(|f| !record.labels.contains(f)) {
            counts.get_mut(&f.kind).unwrap().fp += 1;
            mistakes.push(format!(
                "false {:?} {:?} in {}",
                f.kind,
                &record.text[f.start..f.end],
                record.id
            ));
        }
    }
    let mut failing = Vec::new();
    println!(
        "{:<12} {:>6} {:>6} {:>6} {:>9} {:>7}",
        "kind", "tp", "fp", "fn", "precision", "recall"
    );
    for (kind, c) in &counts {
        let precision = f64::from(c.tp) / f64::from((c.tp + c.fp).max(1));
        let recall = f64::from(c.tp) / f64::from((c.tp + c.fn_).max(1));
        println!(
            "{:<12} {:>6} {:>6} {:>6} {:>9.4} {:>7.4}",
            kind.as_str(),
            c.tp,
            c.fp,
            c.fn_,
            precision,
            recall
        );
        assert!(c.tp > 100, "the corpus must hold at least 100 {kind} findings");
        if precision < 0.97 || recall < 0.97 {
            failing.push(*kind);
        }
    }
    for m in mistakes.iter().take(60) {
        println!("{m}");
    }
    assert!(failing.is_empty(), "precision or recall under 0.97 for {failing:?}");
}
