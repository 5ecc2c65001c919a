//! Imported bank statements: each line stored once per account, so importing the same file
//! again (or an overlapping one) changes nothing.

use chrono::{DateTime, NaiveDate, Utc};
use feeledger_domain::money::Vnd;
use feeledger_domain::reconciliation::{StatementCredit, StatementDebit};

use super::dialect::{on_pool, on_writer};
use super::{Storage, StoreError};
use crate::statement::Statement;

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportSummary {
    pub lines: u32,
    pub inserted: u32,
    pub already_known: u32,
}

/// Where a statement came from, recorded with its balances.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImportSource<'a> {
    /// The format it was read as (`vietinbank`, `mt940`…).
    pub format: &'a str,
    pub filename: Option<&'a str>,
}

/// A statement's balances as recorded, for the chain check and reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedBalances {
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
    pub opening: i64,
    pub closing: i64,
}

/// Why an import was refused.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The statement does not continue the one before it (or the one after it does not
    /// continue this one): money appeared or vanished between two statements.
    #[error(
        "the balances do not chain: the statement for {earlier_first} to {earlier_last} closes at {earlier_closing} but the statement for {later_first} to {later_last} opens at {later_opening} (a difference of {difference})"
    )]
    BalanceBreak {
        earlier_first: NaiveDate,
        earlier_last: NaiveDate,
        earlier_closing: i64,
        later_first: NaiveDate,
        later_last: NaiveDate,
        later_opening: i64,
        difference: i64,
    },
    /// A statement for exactly this period was imported before with other balances.
    #[error(
        "a statement for {first_day} to {last_day} was already imported with opening {recorded_opening} and closing {recorded_closing}; this one has opening {opening} and closing {closing}"
    )]
    PeriodConflict {
        first_day: NaiveDate,
        last_day: NaiveDate,
        recorded_opening: i64,
        recorded_closing: i64,
        opening: i64,
        closing: i64,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A `statement_balances` row: first day, last day, opening, closing.
impl From<(NaiveDate, NaiveDate, i64, i64)> for RecordedBalances {
    fn from((first_day, last_day, opening, closing): (NaiveDate, NaiveDate, i64, i64)) -> Self {
        RecordedBalances { first_day, last_day, opening, closing }
    }
}

#[derive(Debug, Clone)]
pub struct StatementStore {
    store: Storage,
}

const INSERT: &str = "INSERT INTO statement_lines (account_number, line_id, booked_on, value_date, amount, direction, \
                      description, bank_reference, counterparty_name, counterparty_account, statement_id, imported_at) \
                      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                      ON CONFLICT (account_number, line_id) DO NOTHING";

const NEIGHBOURS: &str = "SELECT first_day, last_day, opening, closing FROM statement_balances WHERE account_number = $1 \
                          AND ((first_day = $2 AND last_day = $3) \
                          OR last_day = (SELECT max(last_day) FROM statement_balances WHERE account_number = $1 AND last_day < $2) \
                          OR first_day = (SELECT min(first_day) FROM statement_balances WHERE account_number = $1 AND first_day > $3))";

const INSERT_BALANCES: &str = "INSERT INTO statement_balances (account_number, first_day, last_day, opening, closing, format, \
                               statement_id, filename, imported_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                               ON CONFLICT (account_number, first_day, last_day) DO NOTHING";

/// Lines between two progress reports.
const PROGRESS_EVERY: u32 = 1000;

/// Checks `statement` (with both balances, over `first..=last`) against the recorded
/// statements next to it.
fn check_chain(
    first: NaiveDate,
    last: NaiveDate,
    opening: i64,
    closing: i64,
    neighbours: &[RecordedBalances],
) -> Result<bool, ImportError> {
    if let Some(same) = neighbours.iter().find(|n| n.first_day == first && n.last_day == last) {
        if same.opening == opening && same.closing == closing {
            return Ok(false);
        }
        return Err(ImportError::PeriodConflict {
            first_day: first,
            last_day: last,
            recorded_opening: same.opening,
            recorded_closing: same.closing,
            opening,
            closing,
        });
    }
    let before = neighbours.iter().filter(|n| n.last_day < first).max_by_key(|n| (n.last_day, n.first_day));
    if let Some(before) = before
        && before.closing != opening
    {
        return Err(ImportError::BalanceBreak {
            earlier_first: before.first_day,
            earlier_last: before.last_day,
            earlier_closing: before.closing,
            later_first: first,
            later_last: last,
            later_opening: opening,
            difference: opening.saturating_sub(before.closing),
        });
    }
    let after = neighbours.iter().filter(|n| n.first_day > last).min_by_key(|n| (n.first_day, n.last_day));
    if let Some(after) = after
        && after.opening != closing
    {
        return Err(ImportError::BalanceBreak {
            earlier_first: first,
            earlier_last: last,
            earlier_closing: closing,
            later_first: after.first_day,
            later_last: after.last_day,
            later_opening: after.opening,
            difference: after.opening.saturating_sub(closing),
        });
    }
    Ok(true)
}

/// The period and balances of a statement that has both balances and at least a day.
fn balances_of(statement: &Statement) -> Option<(NaiveDate, NaiveDate, i64, i64)> {
    let first = statement.from.or_else(|| statement.lines.iter().map(|l| l.booked_on).min())?;
    let last = statement.to.or_else(|| statement.lines.iter().map(|l| l.booked_on).max())?;
    Some((first, last, statement.opening_balance?, statement.closing_balance?))
}

impl StatementStore {
    pub fn new(store: Storage) -> Self {
        StatementStore { store }
    }

    /// Stores the statement's lines; lines already stored are left as they are.
    pub async fn import(&self, statement: &Statement, now: DateTime<Utc>) -> Result<ImportSummary, ImportError> {
        self.import_from(statement, ImportSource { format: "", filename: None }, now, &mut |_, _| {}).await
    }

    /// Stores the statement's lines and its balances, in one transaction; lines already stored
    /// are left as they are. Where the statement has both balances, they must chain with the
    /// statements recorded before and after it. `progress(done, total)` is called every
    /// thousand lines and at the end.
    pub async fn import_from(
        &self,
        statement: &Statement,
        source: ImportSource<'_>,
        now: DateTime<Utc>,
        progress: &mut (dyn FnMut(u32, u32) + Send),
    ) -> Result<ImportSummary, ImportError> {
        let context = "importing a bank statement";
        let total = u32::try_from(statement.lines.len()).unwrap_or(u32::MAX);
        let mut summary = ImportSummary::default();
        let balances = balances_of(statement);
        let account = statement.account_number.as_str();
        on_writer!(&self.store, |pool, sql| {
            let mut tx = sql.begin(pool).await.map_err(StoreError::db(context))?;
            if let Some((first, last, opening, closing)) = balances {
                // Two imports of neighbouring statements must not both pass the chain check.
                sql.lock_table(&mut tx, "statement_balances").await.map_err(StoreError::db(context))?;
                let rows: Vec<(NaiveDate, NaiveDate, i64, i64)> = sqlx::query_as(NEIGHBOURS)
                    .bind(account)
                    .bind(first)
                    .bind(last)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(StoreError::db(context))?;
                let neighbours: Vec<RecordedBalances> = rows.into_iter().map(RecordedBalances::from).collect();
                if check_chain(first, last, opening, closing, &neighbours)? {
                    sqlx::query(INSERT_BALANCES)
                        .bind(account)
                        .bind(first)
                        .bind(last)
                        .bind(opening)
                        .bind(closing)
                        .bind(source.format)
                        .bind(&statement.statement_id)
                        .bind(source.filename)
                        .bind(sql.time(now))
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::db(context))?;
                }
            }
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
                    .bind(sql.time(now))
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db(context))?
                    .rows_affected();
                summary.lines += 1;
                if inserted == 1 {
                    summary.inserted += 1
                } else {
                    summary.already_known += 1
                }
                if summary.lines % PROGRESS_EVERY == 0 {
                    progress(summary.lines, total);
                }
            }
            tx.commit().await.map_err(StoreError::db(context))?;
            Ok::<(), ImportError>(())
        })?;
        progress(summary.lines, total);
        tracing::info!(account = %statement.account_number, lines = summary.lines, inserted = summary.inserted, format = source.format, "statement imported");
        Ok(summary)
    }

    /// The debit line of `account` whose line id or bank reference is `reference`, with its
    /// amount: the outgoing transfer of a refund, when its statement is imported.
    pub async fn debit_line(&self, account: &str, reference: &str) -> Result<Option<(String, Vnd)>, StoreError> {
        const SQL: &str = "SELECT line_id, amount FROM statement_lines WHERE account_number = $1 AND direction = 'debit' \
                           AND (line_id = $2 OR bank_reference = $2) ORDER BY line_id LIMIT 1";
        let row: Option<(String, i64)> = on_pool!(&self.store, |pool, sql| sqlx::query_as(SQL)
            .bind(account)
            .bind(reference)
            .fetch_optional(pool)
            .await)
        .map_err(StoreError::db("reading a statement debit line"))?;
        row.map(|(id, amount)| {
            Vnd::new(amount).map(|a| (id, a)).map_err(|e| StoreError::Corrupt { position: 0, reason: e.to_string() })
        })
        .transpose()
    }

    /// The recorded balances of `account`'s statements, by period.
    pub async fn balances(&self, account: &str) -> Result<Vec<RecordedBalances>, StoreError> {
        const SQL: &str = "SELECT first_day, last_day, opening, closing FROM statement_balances WHERE account_number = $1 \
                           ORDER BY first_day, last_day";
        let rows: Vec<(NaiveDate, NaiveDate, i64, i64)> =
            on_pool!(&self.store, |pool, sql| sqlx::query_as(SQL).bind(account).fetch_all(pool).await)
                .map_err(StoreError::db("reading statement balances"))?;
        Ok(rows.into_iter().map(RecordedBalances::from).collect())
    }

    /// The debits of `account` booked from `from` to `to` (inclusive): money that left it.
    pub async fn debits(
        &self,
        account: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<StatementDebit>, StoreError> {
        self.lines(account, "debit", from, to).await
    }

    /// The credits of `account` booked from `from` to `to` (inclusive).
    pub async fn credits(
        &self,
        account: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<StatementCredit>, StoreError> {
        self.lines(account, "credit", from, to).await
    }

    /// The lines of one direction booked from `from` to `to`, by day and line id.
    async fn lines(
        &self,
        account: &str,
        direction: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<StatementCredit>, StoreError> {
        const SQL: &str = "SELECT line_id, booked_on, amount, description, bank_reference FROM statement_lines \
                           WHERE account_number = $1 AND direction = $2 AND booked_on >= $3 AND booked_on <= $4 \
                           ORDER BY booked_on, line_id";
        let rows: Vec<(String, NaiveDate, i64, String, Option<String>)> = on_pool!(&self.store, |pool, sql| {
            sqlx::query_as(SQL).bind(account).bind(direction).bind(from).bind(to).fetch_all(pool).await
        })
        .map_err(StoreError::db("reading statement lines"))?;
        rows.into_iter()
            .map(|(line_id, booked_on, amount, description, bank_reference)| {
                let amount =
                    Vnd::new(amount).map_err(|e| StoreError::Corrupt { position: 0, reason: e.to_string() })?;
                Ok(StatementCredit { line_id, booked_on, amount, description, bank_reference })
            })
            .collect()
    }
}
