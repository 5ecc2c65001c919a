//! The time commands are decided at and events are recorded at. Production reads the system
//! clock; tests can move it, e.g. past a QR's expiry, without sleeping, and the events appended
//! meanwhile carry the moved time (the store records `recorded_at` from its clock).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Duration, SubsecRound, Utc};

#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// Milliseconds added to the system time (zero in production).
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    pub fn system() -> Self {
        Clock::default()
    }

    /// Now, to the microsecond (what the databases store exactly).
    pub fn now(&self) -> DateTime<Utc> {
        (Utc::now() + Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))).trunc_subsecs(6)
    }

    /// Moves this clock (and every clone of it) forward; for tests and demos.
    pub fn advance(&self, by: Duration) {
        self.offset_ms.fetch_add(by.num_milliseconds(), Ordering::Relaxed);
    }
}
