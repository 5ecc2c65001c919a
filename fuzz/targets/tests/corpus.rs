//! Replays the committed fuzzing corpus and every input that once crashed a target
//! (`fuzz/corpus/<target>/`, `fuzz/regressions/<target>/`) through the same target functions the
//! fuzzer runs, so that `cargo test` keeps every parser of outside bytes panic-free.

use std::fs;
use std::panic;
use std::path::{Path, PathBuf};

use feeledger_fuzz_targets::TARGETS;

/// The files of `fuzz/<kind>/<target>/`, sorted; none when the directory does not exist.
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(kind).join(target);
    let Ok(entries) = fs::read_dir(&dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> =
        entries.map(|entry| entry.expect("a readable directory entry").path()).filter(|path| path.is_file()).collect();
    files.sort();
    files
}

#[test]
fn every_corpus_and_regression_input_runs_through_its_target_without_a_panic() {
    let mut failures = Vec::new();
    for (name, target) in TARGETS {
        let corpus = inputs("corpus", name);
        assert!(!corpus.is_empty(), "fuzz/corpus/{name}/ has no inputs; run scripts/fuzz.sh and commit its corpus");
        for path in corpus.iter().chain(&inputs("regressions", name)) {
            let data = fs::read(path).expect("a readable input file");
            if panic::catch_unwind(|| target(&data)).is_err() {
                failures.push(format!("{name}: {}", path.display()));
            }
        }
    }
    assert!(failures.is_empty(), "these inputs made their target panic:\n{}", failures.join("\n"));
}
