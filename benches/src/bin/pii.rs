//! PII scan speed on one core, in MB/s of UTF-8 text: the labeled corpus as it is (dense: a
//! finding every ~200 bytes, most of them phone numbers, cards and IBANs that each go through
//! a validator), and mixed prose (each corpus record followed by 2 KB of plain multilingual
//! text with numbers, times and versions in it).
//!
//! `cargo run --release -p omnicache-bench --bin pii -- [--mb N]`

use omnicache::security::pii::Detector;
use std::time::Instant;

const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../crates/omnicache-security/tests/data/pii_corpus.jsonl"
);

/// Plain sentences in the five scripts the corpus uses, numbers and all, no personal data.
const PROSE: &[&str] = &[
    "The quarterly report shows revenue grew 12% to 4.2 million while costs fell in 3 of 5 regions. ",
    "Der Zug nach München fährt um 14:35 von Gleis 7 ab und braucht etwa 2 Stunden und 40 Minuten. ",
    "Le musée ouvre ses portes à 9 h 30 ; l'entrée coûte 12 € et les visites durent 90 minutes. ",
    "El equipo ganó 3 a 1 el sábado y ya suma 24 puntos en las 10 primeras jornadas de la liga. ",
    "A reunião foi adiada para a próxima terça-feira, às 15h, na sala 204 do segundo andar. ",
    "Поезд прибывает в 7:45, стоянка 20 минут; билеты стоят от 1 500 рублей в одну сторону. ",
    "הפגישה נדחתה ליום שלישי הבא בשעה 10:00, בחדר 3 בקומה השנייה של הבניין. ",
    "Version 2.14.1 fixed 37 bugs; see commit 9f2c1ab and issue #4521 for the details of the change. ",
];

fn texts() -> anyhow::Result<Vec<String>> {
    let raw = std::fs::read_to_string(CORPUS)?;
    raw.lines()
        .map(|l| {
            Ok(serde_json::from_str::<serde_json::Value>(l)?["text"]
                .as_str()
                .unwrap_or_default()
                .to_string())
        })
        .collect()
}

/// Scans `docs` until `target` bytes went through; returns MB/s and findings.
fn rate(detector: &Detector, docs: &[String], target: usize) -> (f64, usize) {
    let (mut bytes, mut findings) = (0usize, 0usize);
    let started = Instant::now();
    while bytes < target {
        for d in docs {
            findings += detector.scan(d).len();
            bytes += d.len();
        }
    }
    (bytes as f64 / 1e6 / started.elapsed().as_secs_f64(), findings)
}

fn main() -> anyhow::Result<()> {
    let mut mb = 50usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--mb" => mb = args.next().unwrap_or_default().parse()?,
            other => anyhow::bail!("unknown argument {other:?}"),
        }
    }
    let detector = Detector::new();
    let corpus = texts()?;
    // Mixed prose: each corpus record, then about 2 KB of plain text.
    let prose: Vec<String> = corpus
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut doc = t.clone();
            let mut j = i;
            while doc.len() < t.len() + 2048 {
                doc.push(' ');
                doc.push_str(PROSE[j % PROSE.len()]);
                j += 1;
            }
            doc
        })
        .collect();
    let _ = rate(&detector, &corpus, 1_000_000); // warm: phone metadata, regex caches
    let target = mb * 1_000_000;
    let (dense, f1) = rate(&detector, &corpus, target);
    let (mixed, f2) = rate(&detector, &prose, target);
    let per_kb = |f: usize| f as f64 / (target as f64 / 1000.0);
    println!("corpus (dense):  {dense:>7.1} MB/s  ({:.2} findings per KB)", per_kb(f1));
    println!("mixed prose:     {mixed:>7.1} MB/s  ({:.2} findings per KB)", per_kb(f2));
    Ok(())
}
