//! Daily reconciliation of an agency's collection account: the ledger's payments (from the
//! payments read model) against the imported bank statement, matched by
//! `feeledger_domain::reconciliation::reconcile`. Only reads: recording the day's new matches on
//! their cases (Reconciled events, so the pairing is kept for later days and audits) is the
//! write side's, `feeledger_infrastructure::reconciliation` (one transaction for the day).

use std::time::Duration;

use chrono::NaiveDate;
use feeledger_domain::bank_credit::CreditEvent;
use feeledger_domain::batch_matching::BatchRules;
use feeledger_domain::case_fees::CaseEvent;
use feeledger_domain::codes::AgencyCode;
use feeledger_domain::decider::{AgencyDecider, ResolutionsDecider};
use feeledger_domain::reconciliation::{
    DATE_WINDOW_DAYS, DayReconciliation, Outgoing, OutgoingKind, Pairing, apply_resolutions, explain_debits,
    reconcile_with,
};
use feeledger_infrastructure::codec::{self, LedgerEvent};
use feeledger_infrastructure::command;
use feeledger_infrastructure::statement_store::StatementStore;
use feeledger_infrastructure::storage::StoreError;

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
}

impl From<StoreError> for ReconciliationError {
    fn from(error: StoreError) -> Self {
        ReconciliationError::Projection(error.into())
    }
}

#[derive(Debug, Clone)]
pub struct Reconciliations {
    runner: Runner,
    statements: StatementStore,
    rules: BatchRules,
}

impl Reconciliations {
    pub fn new(runner: Runner, statements: StatementStore) -> Self {
        Reconciliations { runner, statements, rules: BatchRules::default() }
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
        let configuration = self.runner.store().read_stream(&codec::agency_stream(agency)).await?;
        let account = command::fold::<AgencyDecider>(configuration)
            .map_err(ProjectionError::from)?
            .state
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
            let resolutions = self.runner.store().read_stream(&codec::reconciliation_stream(agency)).await?;
            let resolutions = command::fold::<ResolutionsDecider>(resolutions).map_err(ProjectionError::from)?.state;
            apply_resolutions(&mut report, &resolutions);
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
        let store = self.runner.store().for_reads().await;
        let mut outgoing = Vec::new();
        for event_type in ["OverpaymentRefunded", "CreditRefunded", "RemittanceRecorded"] {
            for stored in store.events_of_type(event_type).await? {
                let paid = match LedgerEvent::decode(&stored).map_err(ProjectionError::from)? {
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

    /// The pairings of `report` (made by [`Reconciliations::report`] for `date`) that the
    /// payments read model does not show as recorded on their cases yet. Recording them is the
    /// write side's (`Ledger::record_reconciliation`), which decides again on each case.
    pub async fn unrecorded(
        &self,
        agency: &AgencyCode,
        date: NaiveDate,
        report: &DayReconciliation,
    ) -> Result<Vec<Pairing>, ReconciliationError> {
        let (from, to) = self.window(date);
        let known = payments_between(self.runner.documents(), agency, from, to).await?;
        Ok(report.unrecorded_pairings(&known))
    }
}
