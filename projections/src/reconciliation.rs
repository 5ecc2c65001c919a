//! Daily reconciliation of an agency's collection account: the ledger's payments (from the
//! payments read model) against the imported bank statement, matched by
//! `feeledger_domain::reconciliation::reconcile`. `reconcile_day` also records each new match
//! on its case (a Reconciled event), so the pairing is kept for later days and audits.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use feeledger_domain::case_fees::{Command, RecordReconciliation};
use feeledger_domain::codes::AgencyCode;
use feeledger_domain::reconciliation::{DayReconciliation, reconcile};
use feeledger_infrastructure::event_store::EventMetadata;
use feeledger_infrastructure::ledger::{Ledger, LedgerError};
use feeledger_infrastructure::statement_store::StatementStore;

use crate::payments::{PaymentsProjection, payments_between, window};
use crate::runner::{Projection, ProjectionError, Runner};

/// How long a reconciliation waits for the payments read model to catch up with the log.
const CATCH_UP: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ReconciliationError {
    #[error("agency {0} is not configured")]
    UnknownAgency(AgencyCode),
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl From<feeledger_infrastructure::event_store::StoreError> for ReconciliationError {
    fn from(error: feeledger_infrastructure::event_store::StoreError) -> Self {
        ReconciliationError::Ledger(error.into())
    }
}

#[derive(Debug, Clone)]
pub struct Reconciliations {
    ledger: Ledger,
    runner: Runner,
    statements: StatementStore,
}

impl Reconciliations {
    pub fn new(ledger: Ledger, runner: Runner, statements: StatementStore) -> Self {
        Reconciliations { ledger, runner, statements }
    }

    /// The reconciliation of `date`, as things stand (nothing is recorded).
    pub async fn report(
        &self,
        agency: &AgencyCode,
        date: NaiveDate,
        today: NaiveDate,
    ) -> Result<DayReconciliation, ReconciliationError> {
        let account = self
            .ledger
            .agency(agency)
            .await?
            .current
            .map(|a| a.bank_account.number.to_string())
            .ok_or_else(|| ReconciliationError::UnknownAgency(agency.clone()))?;
        self.runner.caught_up(PaymentsProjection::NAME, CATCH_UP).await?;
        let (from, to) = window(date);
        let payments = payments_between(self.runner.documents(), agency, from, to).await?;
        let statement = self.statements.credits(&account, from, to).await?;
        Ok(reconcile(agency, date, &payments, &statement, today))
    }

    /// Reconciles `date` and records every new match on its case; returns the report after.
    pub async fn reconcile_day(
        &self,
        agency: &AgencyCode,
        date: NaiveDate,
        today: NaiveDate,
        metadata: &EventMetadata,
        now: DateTime<Utc>,
    ) -> Result<DayReconciliation, ReconciliationError> {
        let report = self.report(agency, date, today).await?;
        let (from, to) = window(date);
        let known = payments_between(self.runner.documents(), agency, from, to).await?;
        let mut recorded = 0;
        for matched in &report.matches {
            let already = known.iter().any(|p| p.payment_id == matched.payment_id && p.reconciled_line_id.is_some());
            if already {
                continue;
            }
            let command = Command::RecordReconciliation(RecordReconciliation {
                payment_id: matched.payment_id,
                statement_line_id: matched.line_id.clone(),
                statement_date: matched.booked_on,
                now,
            });
            self.ledger.execute(&matched.case_code, command, metadata, None).await?;
            recorded += 1;
        }
        tracing::info!(agency.code = %agency, %date, matched = report.matches.len(), recorded, exceptions = report.exceptions.len(), "day reconciled");
        if recorded > 0 {
            return self.report(agency, date, today).await;
        }
        Ok(report)
    }
}
