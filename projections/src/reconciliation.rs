//! Daily reconciliation of an agency's collection account: the ledger's payments (from the
//! payments read model) against the imported bank statement, matched by
//! `feeledger_domain::reconciliation::reconcile`. `reconcile_day` also records each new match
//! on its case (a Reconciled event), so the pairing is kept for later days and audits.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use feeledger_domain::bank_credit::CreditEvent;
use feeledger_domain::batch_matching::BatchRules;
use feeledger_domain::case_fees::CaseEvent;
use feeledger_domain::case_fees::{Command, RecordReconciliation};
use feeledger_domain::codes::{AgencyCode, CaseCode};
use feeledger_domain::reconciliation::{
    DATE_WINDOW_DAYS, DayReconciliation, Outgoing, OutgoingKind, apply_resolutions, explain_debits, reconcile_with,
};
use feeledger_infrastructure::codec::LedgerEvent;
use feeledger_infrastructure::event_store::EventMetadata;
use feeledger_infrastructure::ledger::{Ledger, LedgerError};
use feeledger_infrastructure::statement_store::StatementStore;

use crate::payments::{PaymentsProjection, payments_between};
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
    rules: BatchRules,
}

impl Reconciliations {
    pub fn new(ledger: Ledger, runner: Runner, statements: StatementStore) -> Self {
        Reconciliations { ledger, runner, statements, rules: BatchRules::default() }
    }

    /// The tolerances of card settlements and cash deposits.
    #[must_use]
    pub fn with_batch_rules(mut self, rules: BatchRules) -> Self {
        self.rules = rules;
        self
    }

    /// The days read around `date`: a day either side for transfers, and as far as a card
    /// settlement or a cash deposit may lag, both ways (a deposit booked on `date` may cover the
    /// week before; a card day's settlement may come days after).
    fn window(&self, date: NaiveDate) -> (NaiveDate, NaiveDate) {
        let lag = self.rules.deposit_lag_days.max(self.rules.settlement_lag_days).max(0);
        let days = chrono::Duration::days(lag.saturating_mul(2).saturating_add(DATE_WINDOW_DAYS));
        (date - days, date + days)
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
        let (from, to) = self.window(date);
        let payments = payments_between(self.runner.documents(), agency, from, to).await?;
        let statement = self.statements.credits(&account, from, to).await?;
        let mut report = reconcile_with(agency, date, &payments, &statement, today, &self.rules);
        let debits = self.statements.debits(&account, from, to).await?;
        if !debits.is_empty() {
            explain_debits(&mut report, &debits, &self.outgoing(agency, from, to).await?);
        }
        if !report.exceptions.is_empty() || !report.debits.is_empty() {
            apply_resolutions(&mut report, &self.ledger.resolutions(agency).await?);
        }
        // A report whose sums did not fit or do not add up is refused, logged and counted.
        crate::invariants::require(PaymentsProjection::NAME, "daily reconciliation", report.check().is_ok(), &report)?;
        Ok(report)
    }

    /// What the ledger recorded paid out from `from` to `to`: refunds (of overpayments and of
    /// unmatched credits, whoever's) and `agency`'s remittances to the State Treasury. Refunds
    /// are not filtered by agency: a debit line is of this agency's account, and a refund
    /// explains it only with its own reference (or line) and amount.
    async fn outgoing(
        &self,
        agency: &AgencyCode,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<Outgoing>, ReconciliationError> {
        let store = self.ledger.store().for_reads().await;
        let mut outgoing = Vec::new();
        for event_type in ["OverpaymentRefunded", "CreditRefunded", "RemittanceRecorded"] {
            for stored in store.events_of_type(event_type).await? {
                let paid = match LedgerEvent::decode(&stored).map_err(LedgerError::from)? {
                    LedgerEvent::Case(CaseEvent::OverpaymentRefunded(r)) => {
                        (OutgoingKind::Refund, r.reference, r.amount, r.paid_on, r.statement_line_id)
                    }
                    LedgerEvent::Credit(CreditEvent::CreditRefunded(r)) => {
                        (OutgoingKind::Refund, r.reference, r.amount, r.paid_on, r.statement_line_id)
                    }
                    LedgerEvent::RemittanceRecorded(r) if &r.agency_code == agency => {
                        (OutgoingKind::Remittance, r.voucher_number, r.amount, r.remitted_on, None)
                    }
                    _ => continue,
                };
                let (kind, reference, amount, paid_on, statement_line_id) = paid;
                if (from..=to).contains(&paid_on) || statement_line_id.is_some() {
                    outgoing.push(Outgoing { kind, reference, amount, paid_on, statement_line_id });
                }
            }
        }
        Ok(outgoing)
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
        let (from, to) = self.window(date);
        let known = payments_between(self.runner.documents(), agency, from, to).await?;
        let mut recorded = 0;
        // 1:1 matches, then every payment of each batch, each paired with the batch's line.
        let mut pairs: Vec<(uuid::Uuid, CaseCode, String, NaiveDate)> = report
            .matches
            .iter()
            .map(|m| (m.payment_id, m.case_code.clone(), m.line_id.clone(), m.booked_on))
            .collect();
        for batch in &report.batches {
            for (payment_id, case_code) in &batch.payments {
                pairs.push((*payment_id, case_code.clone(), batch.line_id.clone(), batch.booked_on));
            }
        }
        for (payment_id, case_code, line_id, booked_on) in pairs {
            let already = known.iter().any(|p| p.payment_id == payment_id && p.reconciled_line_id.is_some());
            if already {
                continue;
            }
            let command = Command::RecordReconciliation(RecordReconciliation {
                payment_id,
                statement_line_id: line_id,
                statement_date: booked_on,
                now,
            });
            self.ledger.execute(&case_code, command, metadata, None).await?;
            recorded += 1;
        }
        tracing::info!(agency.code = %agency, %date, matched = report.matches.len(), recorded, exceptions = report.exceptions.len(), "day reconciled");
        if recorded > 0 {
            return self.report(agency, date, today).await;
        }
        Ok(report)
    }
}
