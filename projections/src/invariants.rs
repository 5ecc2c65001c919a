//! Report invariants, checked in every build: a report whose parts do not add up to its totals
//! is refused with an error and counted, never returned with a silently wrong total.

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::runner::ProjectionError;

static BROKEN: AtomicU64 = AtomicU64::new(0);

/// How many reports this process refused because an invariant did not hold
/// (`feeledger_report_invariants_broken_total`).
pub fn broken_total() -> u64 {
    BROKEN.load(Ordering::Relaxed)
}

/// `Ok` when `holds`; otherwise logs the report, counts the break and returns an error.
pub fn require(projection: &'static str, report: &str, holds: bool, value: &impl Debug) -> Result<(), ProjectionError> {
    if holds {
        return Ok(());
    }
    BROKEN.fetch_add(1, Ordering::Relaxed);
    tracing::error!(projection, report, value = ?value, "report invariant broken: refusing to return it");
    Err(ProjectionError::Document {
        projection,
        key: report.to_owned(),
        reason: "its lines do not add up to its totals (an invariant is broken; see the log)".to_owned(),
    })
}
