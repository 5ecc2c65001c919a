//! Recording a day's reconciliation on the cases: one transaction, whatever its size.
//!
//! The matching is the domain's (`feeledger_domain::reconciliation`), run by the read side over
//! the payments read model and the imported statement; it yields the day's pairings of a
//! payment with a statement line. Each pairing is recorded on its case as a `Reconciled` event
//! by the case's own decider, and all the cases of the day are appended together
//! ([`Ledger::handle_together`]), each at the version read: a day's matches are recorded whole
//! or not at all, and a case changing meanwhile makes the whole day decide again.
//!
//! A pairing is keyed by its payment: a case that holds the pairing already decides nothing, so
//! a retried or concurrent reconciliation of the same day records nothing twice.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use feeledger_domain::case_fees::{Command, RecordReconciliation};
use feeledger_domain::codes::CaseCode;
use feeledger_domain::decider::CaseDecider;
use feeledger_domain::reconciliation::Pairing;

use crate::codec;
use crate::ledger::{Ledger, LedgerError};
use crate::storage::EventMetadata;

impl Ledger {
    /// Records `pairings` on their cases in one transaction; returns how many were new (a
    /// pairing a case holds already is not recorded again).
    pub async fn record_reconciliation(
        &self,
        pairings: &[Pairing],
        metadata: &EventMetadata,
        now: DateTime<Utc>,
    ) -> Result<usize, LedgerError> {
        let mut by_case: BTreeMap<&CaseCode, Vec<Command>> = BTreeMap::new();
        for pairing in pairings {
            by_case.entry(&pairing.case_code).or_default().push(Command::RecordReconciliation(RecordReconciliation {
                payment_id: pairing.payment_id,
                statement_line_id: pairing.statement_line_id.clone(),
                statement_date: pairing.statement_date,
                now,
            }));
        }
        let commands: Vec<(String, Vec<Command>)> =
            by_case.into_iter().map(|(code, commands)| (codec::case_stream(code), commands)).collect();
        let written = self.handle_together::<CaseDecider>(&commands, metadata).await?;
        Ok(written.iter().map(|(_, events)| events.len()).sum())
    }
}
