//! Imported bank statements: each line stored once per account, so importing the same file
//! again (or an overlapping one) changes nothing.

use chrono::{DateTime, NaiveDate, Utc};
use feeledger_domain::money::Vnd;
use feeledger_domain::reconciliation::StatementCredit;

use crate::event_store::hash_chain::timestamp_text;
use crate::event_store::{EventStore, StoreError};
use crate::statement::Statement;

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportSummary {
    pub lines: u32,
    pub inserted: u32,
    pub already_known: u32,
}

#[derive(Debug, Clone)]
pub struct StatementStore {
    store: EventStore,
}

const INSERT: &str = "INSERT INTO statement_lines (account_number, line_id, booked_on, value_date, amount, direction, \
                      description, bank_reference, counterparty_name, counterparty_account, statement_id, imported_at) \
                      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                      ON CONFLICT (account_number, line_id) DO NOTHING";

impl StatementStore {
    pub fn new(store: EventStore) -> Self {
        StatementStore { store }
    }

    /// Stores the statement's lines; lines already stored are left as they are.
    pub async fn import(&self, statement: &Statement, now: DateTime<Utc>) -> Result<ImportSummary, StoreError> {
        let context = "importing a bank statement";
        let mut summary = ImportSummary::default();
        match &self.store {
            EventStore::Postgres(pg) => {
                let mut tx = pg.pool().begin().await.map_err(StoreError::db(context))?;
                for line in &statement.lines {
                    let inserted = sqlx::query(INSERT)
                        .bind(&line.account_number)
                        .bind(&line.line_id)
                        .bind(line.booked_on)
                        .bind(line.value_date)
                        .bind(line.amount.dong())
                        .bind(line.direction.as_str())
                        .bind(&line.description)
                        .bind(&line.bank_reference)
                        .bind(&line.counterparty_name)
                        .bind(&line.counterparty_account)
                        .bind(&statement.statement_id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::db(context))?
                        .rows_affected();
                    summary.lines += 1;
                    if inserted == 1 { summary.inserted += 1 } else { summary.already_known += 1 }
                }
                tx.commit().await.map_err(StoreError::db(context))?;
            }
            EventStore::Sqlite(lite) => {
                let mut tx = lite.begin_write().await.map_err(StoreError::db(context))?;
                let now = timestamp_text(now);
                for line in &statement.lines {
                    let inserted = sqlx::query(INSERT)
                        .bind(&line.account_number)
                        .bind(&line.line_id)
                        .bind(line.booked_on.to_string())
                        .bind(line.value_date.map(|d| d.to_string()))
                        .bind(line.amount.dong())
                        .bind(line.direction.as_str())
                        .bind(&line.description)
                        .bind(&line.bank_reference)
                        .bind(&line.counterparty_name)
                        .bind(&line.counterparty_account)
                        .bind(&statement.statement_id)
                        .bind(&now)
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::db(context))?
                        .rows_affected();
                    summary.lines += 1;
                    if inserted == 1 { summary.inserted += 1 } else { summary.already_known += 1 }
                }
                tx.commit().await.map_err(StoreError::db(context))?;
            }
        }
        tracing::info!(account = %statement.account_number, lines = summary.lines, inserted = summary.inserted, "statement imported");
        Ok(summary)
    }

    /// The credits of `account` booked from `from` to `to` (inclusive).
    pub async fn credits(
        &self,
        account: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<StatementCredit>, StoreError> {
        const SQL: &str = "SELECT line_id, booked_on, amount, description, bank_reference FROM statement_lines \
                           WHERE account_number = $1 AND direction = 'credit' AND booked_on >= $2 AND booked_on <= $3 \
                           ORDER BY booked_on, line_id";
        let context = "reading statement lines";
        let rows: Vec<(String, NaiveDate, i64, String, Option<String>)> = match &self.store {
            EventStore::Postgres(pg) => sqlx::query_as(SQL)
                .bind(account)
                .bind(from)
                .bind(to)
                .fetch_all(pg.pool())
                .await
                .map_err(StoreError::db(context))?,
            EventStore::Sqlite(lite) => {
                let rows: Vec<(String, String, i64, String, Option<String>)> = sqlx::query_as(SQL)
                    .bind(account)
                    .bind(from.to_string())
                    .bind(to.to_string())
                    .fetch_all(lite.pool())
                    .await
                    .map_err(StoreError::db(context))?;
                rows.into_iter().filter_map(|(i, d, a, s, r)| d.parse().ok().map(|d| (i, d, a, s, r))).collect()
            }
        };
        rows.into_iter()
            .map(|(line_id, booked_on, amount, description, bank_reference)| {
                let amount =
                    Vnd::new(amount).map_err(|e| StoreError::Corrupt { position: 0, reason: e.to_string() })?;
                Ok(StatementCredit { line_id, booked_on, amount, description, bank_reference })
            })
            .collect()
    }
}
