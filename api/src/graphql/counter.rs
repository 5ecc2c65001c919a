//! The counter: issuing the payment QR, and the live display both screens show.
//!
//! A counter's display is the state of the case most recently assessed or given a QR at that
//! counter, replayed from the case's stream. Which case that is comes from an index on the log
//! (`events_counter_activation_idx`), so it is exact the moment an append commits.
//!
//! Subscriptions follow their topics on the process's live routes (`crate::live_routes`) *before*
//! reading the state they send, and re-read the state when an event of theirs arrives or when
//! they lagged, so no update is missed.

use async_graphql::{Context, EmptyMutation, EmptySubscription, Enum, Object, Schema, Subscription};
use chrono::Duration;
use feeledger_domain::case_fees::{CaseFees, CaseStatus, Command, IssueQr, QrStatus};
use feeledger_domain::codes::{AgencyCode, CaseCode, CounterId};
use feeledger_infrastructure::codec::{self, CASE_STREAM_PREFIX};
use feeledger_infrastructure::ledger::{CaseRecord, Ledger};
use feeledger_infrastructure::storage::RecordedEvent;
use futures::Stream;
use uuid::Uuid;

use super::cases::{CaseStatusGql, CaseView, FeeLineView, PayerView, QrView, parse_case_code, qr_view};
use super::errors::{ApiError, ApiResult};
use super::scalars::{DateTimeScalar, VndScalar};
use super::{api, ledger, metadata, now, principal};
use crate::auth::Principal;
use crate::live_routes::{Follower, LiveRoutes, Topic};

/// What a counter's screens show, in the words of the screens.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum DisplayState {
    /// Fees assessed, no QR to pay yet.
    Assessed,
    /// A QR is shown, nothing paid yet.
    Waiting,
    /// Part paid; a new QR for the remainder can be issued.
    PartiallyPaid,
    /// Paid in full ("Thanh toán thành công").
    Paid,
    /// The QR expired before it was paid.
    Expired,
    Cancelled,
}

impl DisplayState {
    fn of(state: &CaseFees) -> DisplayState {
        let qr_expired = state.qr.as_ref().is_some_and(|q| q.status == QrStatus::Expired);
        match state.status {
            CaseStatus::Cancelled => DisplayState::Cancelled,
            CaseStatus::Paid | CaseStatus::Overpaid => DisplayState::Paid,
            _ if qr_expired && !state.outstanding().is_zero() => DisplayState::Expired,
            CaseStatus::PartiallyPaid => DisplayState::PartiallyPaid,
            CaseStatus::AwaitingPayment => DisplayState::Waiting,
            CaseStatus::New | CaseStatus::Assessed => DisplayState::Assessed,
        }
    }

    /// The sentence the citizen's screen shows.
    fn message_vi(self) -> &'static str {
        match self {
            DisplayState::Assessed => "Hồ sơ đã được tính phí, lệ phí. Vui lòng chờ mã QR thanh toán.",
            DisplayState::Waiting => "Mở ứng dụng ngân hàng hoặc ví điện tử, quét mã QR để thanh toán.",
            DisplayState::PartiallyPaid => "Đã nhận một phần. Vui lòng thanh toán số tiền còn lại.",
            DisplayState::Paid => "Thanh toán thành công",
            DisplayState::Expired => "Mã QR đã hết hạn. Vui lòng đề nghị cán bộ tạo mã mới.",
            DisplayState::Cancelled => "Hồ sơ đã hủy thu phí.",
        }
    }
}

/// The display of one counter.
pub struct CounterDisplayView {
    agency_code: AgencyCode,
    agency_name: String,
    counter_id: CounterId,
    record: CaseRecord,
}

#[Object(name = "CounterDisplay")]
impl CounterDisplayView {
    async fn agency_code(&self) -> String {
        self.agency_code.to_string()
    }

    async fn agency_name(&self) -> &str {
        &self.agency_name
    }

    async fn counter_id(&self) -> String {
        self.counter_id.to_string()
    }

    async fn case_code(&self) -> String {
        self.record.code.to_string()
    }

    async fn procedure_name(&self) -> Option<&str> {
        self.record.state.assessment.as_ref().map(|a| a.procedure_name.as_str())
    }

    async fn payer(&self) -> PayerView {
        let payer = self.record.state.assessment.as_ref().map(|a| &a.payer);
        PayerView::of(payer)
    }

    async fn lines(&self) -> Vec<FeeLineView> {
        FeeLineView::of(&self.record.state)
    }

    async fn status(&self) -> CaseStatusGql {
        CaseStatusGql::of(&self.record.state)
    }

    async fn state(&self) -> DisplayState {
        DisplayState::of(&self.record.state)
    }

    /// What to tell the citizen, in Vietnamese.
    async fn message(&self) -> &'static str {
        DisplayState::of(&self.record.state).message_vi()
    }

    async fn total(&self) -> VndScalar {
        self.record.state.total().into()
    }

    async fn paid(&self) -> VndScalar {
        self.record.state.paid.into()
    }

    async fn outstanding(&self) -> VndScalar {
        self.record.state.outstanding().into()
    }

    async fn overpaid(&self) -> VndScalar {
        self.record.state.overpaid().into()
    }

    /// The QR to scan, while it can be paid (or to show as expired).
    async fn qr(&self) -> Option<QrView> {
        let state = &self.record.state;
        let current = state.qr.as_ref()?;
        let payable = state.payable_qr().is_some();
        let expired = current.status == QrStatus::Expired;
        (payable || expired).then(|| qr_view(&current.qr, payable, expired))
    }

    async fn updated_at(&self) -> Option<DateTimeScalar> {
        self.record.events.last().map(|e| DateTimeScalar(e.recorded_at))
    }

    /// The case stream version shown; grows with every change.
    async fn version(&self) -> i32 {
        i32::try_from(self.record.version).unwrap_or(i32::MAX)
    }
}

/// Which counter a request is about: the agency is the argument, or the token's own.
pub(crate) fn counter_scope(
    principal: &Principal,
    agency_code: Option<&str>,
    counter_id: &str,
) -> ApiResult<(AgencyCode, CounterId)> {
    let agency = match agency_code {
        Some(code) => AgencyCode::parse(code.trim()).map_err(ApiError::validation)?,
        None => principal
            .agency
            .clone()
            .ok_or_else(|| ApiError::Validation("agencyCode is required for a token not scoped to an agency".into()))?,
    };
    let counter = CounterId::parse(counter_id.trim()).map_err(ApiError::validation)?;
    if principal.can_watch_counter(&agency, &counter) { Ok((agency, counter)) } else { Err(ApiError::forbidden()) }
}

/// The display of a counter now, or `None` when no case was ever shown there. Read from the read
/// replica when there is one (with every write committed before this call).
async fn load_display(
    ledger: &Ledger,
    agency: &AgencyCode,
    counter: &CounterId,
) -> ApiResult<Option<CounterDisplayView>> {
    // A ledger over the replica's view when the read goes there; the caller's otherwise (no
    // store clone on every screen's read).
    let replica;
    let ledger = match ledger.store().for_reads().await {
        std::borrow::Cow::Borrowed(_) => ledger,
        std::borrow::Cow::Owned(view) => {
            replica = Ledger::new(view);
            &replica
        }
    };
    let Some(stream) = ledger
        .store()
        .latest_counter_activation(agency.as_str(), counter.as_str())
        .await
        .map_err(|e| ApiError::from(feeledger_infrastructure::ledger::LedgerError::from(e)))?
    else {
        return Ok(None);
    };
    let code =
        stream.strip_prefix(CASE_STREAM_PREFIX).and_then(|c| CaseCode::parse(c).ok()).ok_or(ApiError::Internal)?;
    let record = ledger.load_case(&code).await?;
    let agency_name = ledger.agency(agency).await?.current.map(|a| a.name).unwrap_or_default();
    Ok(Some(CounterDisplayView { agency_code: agency.clone(), agency_name, counter_id: counter.clone(), record }))
}

/// The counter an event makes show its case (`FeeAssessed` or `QrIssued` there), as
/// (agency, counter): what a counter's display follows besides the case it shows.
pub(crate) fn activated_counter(event: &RecordedEvent) -> Option<(String, String)> {
    if !matches!(event.event_type.as_str(), "FeeAssessed" | "QrIssued") {
        return None;
    }
    let agency = event.payload.get("agency_code").and_then(|v| v.as_str())?;
    let counter = event.payload.get("counter_id").and_then(|v| v.as_str())?;
    Some((agency.to_owned(), counter.to_owned()))
}

fn counter_topic(agency: &AgencyCode, counter: &CounterId) -> Topic {
    Topic::Counter { agency: agency.as_str().to_owned(), counter: counter.as_str().to_owned() }
}

#[derive(Default, Debug)]
pub struct CounterQueries;

#[Object]
impl CounterQueries {
    /// What counter `counterId` shows now; null when no case was ever shown there.
    async fn counter_display(
        &self,
        ctx: &Context<'_>,
        counter_id: String,
        agency_code: Option<String>,
    ) -> ApiResult<Option<CounterDisplayView>> {
        let (agency, counter) = counter_scope(principal(ctx)?, agency_code.as_deref(), &counter_id)?;
        load_display(ledger(ctx), &agency, &counter).await
    }
}

#[derive(Default, Debug)]
pub struct CounterMutations;

#[Object]
impl CounterMutations {
    /// A dynamic VietQR for exactly what the case still owes, shown on the counter's two
    /// screens. Supersedes the case's earlier QR; refused when nothing is outstanding.
    async fn issue_qr(&self, ctx: &Context<'_>, case_code: String, counter_id: String) -> ApiResult<QrView> {
        let case_code = parse_case_code(&case_code)?;
        let agency_code = case_code.agency();
        let principal = principal(ctx)?.clone();
        if !principal.can_operate_in(&agency_code) {
            return Err(ApiError::forbidden());
        }
        let counter = CounterId::parse(counter_id.trim()).map_err(ApiError::validation)?;
        if principal.counter.as_ref().is_some_and(|own| *own != counter) {
            return Err(ApiError::Forbidden(format!(
                "your token is for counter {}",
                principal.counter.as_ref().map_or("", |c| c.as_str())
            )));
        }
        let agency = ledger(ctx)
            .agency(&agency_code)
            .await?
            .current
            .ok_or_else(|| ApiError::NotFound(format!("agency {agency_code} is not configured")))?;
        if !agency.counters.contains(&counter) {
            return Err(ApiError::Validation(format!("counter {counter} is not a counter of agency {agency_code}")));
        }
        let at = now(ctx);
        let ttl = Duration::seconds(i64::from(api(ctx).qr_ttl_seconds.max(1)));
        let command = Command::IssueQr(IssueQr {
            // Random, not time-ordered: the id is the capability to fetch the QR image.
            qr_id: Uuid::new_v4(),
            counter_id: counter,
            beneficiary: agency.bank_account,
            now: at,
            expires_at: at + ttl,
        });
        let record = ledger(ctx).execute(&case_code, command, &metadata(ctx, &principal), None).await?;
        let current = record.state.qr.as_ref().ok_or(ApiError::Internal)?;
        Ok(qr_view(&current.qr, record.state.payable_qr().is_some(), current.status == QrStatus::Expired))
    }
}

/// After a failed read (the database busy, e.g. 10,000 screens subscribing at once and sharing
/// the pool), a subscription reads again shortly rather than wait for the next event of its
/// topics, which may never come: it has sent nothing yet, or shows a stale state.
pub(crate) async fn retry_after_failed_read() -> bool {
    // Boxed: a timer is ~110 bytes, and a parked subscription (10,000 screens) should not
    // carry one for a wait that happens only after a failure.
    Box::pin(tokio::time::sleep(std::time::Duration::from_millis(250))).await;
    true
}

#[derive(Default, Debug)]
pub struct CounterSubscriptions;

/// A counter's display now (if a case was ever shown there) and again after every change: what
/// the `counterDisplay` subscription and the screens' plain feed (`crate::display_feed`) send.
pub(crate) fn displays(
    live: &LiveRoutes,
    ledger: &Ledger,
    agency: AgencyCode,
    counter: CounterId,
) -> impl Stream<Item = Box<CounterDisplayView>> + use<> {
    let watch = Box::new(DisplayWatch {
        events: live.follow([counter_topic(&agency, &counter)]),
        ledger: ledger.clone(),
        agency,
        counter,
        shown_stream: None,
        sent_version: None,
        fresh: true,
    });
    futures::stream::unfold(watch, DisplayWatch::next)
}

/// What the citizen's screen shows of a display (`DISPLAY_FIELDS` in api/web/screens.js): the
/// selection the plain feed answers with.
const DISPLAY_SELECTION: &str = "caseCode agencyName counterId procedureName status state message total \
    paid outstanding overpaid payer { name maskedId } lines { feeCode name kind quantity unitAmount amount } \
    qr { id payload amount reference svgUrl pngUrl expiresAt payable expired } updatedAt version";

/// The root of the schema that turns a display already read into JSON.
struct DisplayRoot;

#[Object]
impl DisplayRoot {
    async fn counter_display<'ctx>(&self, ctx: &Context<'ctx>) -> Option<&'ctx CounterDisplayView> {
        ctx.data_opt::<CounterDisplayView>()
    }
}

/// `{"counterDisplay": {…}}` with [`DISPLAY_SELECTION`] of `display`: exactly what the GraphQL
/// query `counterDisplay { … }` answers, resolved by the same types from the display already
/// read (a schema of its own whose root is that display), so a screen fed without GraphQL
/// keeps nothing of GraphQL while it waits.
pub(crate) async fn display_data(display: CounterDisplayView) -> Result<serde_json::Value, String> {
    static SCHEMA: std::sync::OnceLock<Schema<DisplayRoot, EmptyMutation, EmptySubscription>> =
        std::sync::OnceLock::new();
    let schema = SCHEMA.get_or_init(|| Schema::new(DisplayRoot, EmptyMutation, EmptySubscription));
    let code = display.record.code.to_string();
    let request = async_graphql::Request::new(format!("{{ counterDisplay {{ {DISPLAY_SELECTION} }} }}")).data(display);
    let response = schema.execute(request).await;
    if let Some(error) = response.errors.first() {
        return Err(format!("case {code}: {}", error.message));
    }
    response.data.into_json().map_err(|e| e.to_string())
}

/// Follows the counter and the case it shows; re-reads the display when either changes.
struct DisplayWatch {
    events: Follower,
    ledger: Ledger,
    agency: AgencyCode,
    counter: CounterId,
    shown_stream: Option<String>,
    sent_version: Option<(String, i64)>,
    fresh: bool,
}

/// What one read of a display or a case leads to.
enum ReadOutcome<T> {
    /// Something that differs from what was sent last: send it. Boxed, as the streams' items
    /// are: async-graphql keeps room for one item in every open subscription (the future
    /// that resolves it), 8 bytes for a box instead of ~850 for a display or a case.
    Send(Box<T>),
    /// Nothing to send: wait for the next event (or read once more when `fresh`).
    Unchanged,
    /// The read failed: read again shortly.
    Failed,
}

impl DisplayWatch {
    /// The next display that differs from the last one sent.
    ///
    /// Only what a parked subscription needs lives across the awaits here (10,000 screens
    /// park in them): the read is boxed, so its query futures exist only while it reads; its
    /// answer goes straight to `take`, so no display (~850 bytes) is held while waiting; and
    /// the watch is boxed, since an async fn keeps its argument twice (as passed, and moved).
    async fn next(mut self: Box<Self>) -> Option<(Box<CounterDisplayView>, Box<DisplayWatch>)> {
        loop {
            if !self.fresh {
                // An event of the counter or of the case shown, or missed ones: re-read.
                self.events.recv().await?;
            }
            self.fresh = false;
            match self.take(Box::pin(load_display(&self.ledger, &self.agency, &self.counter)).await) {
                ReadOutcome::Send(display) => return Some((display, self)),
                ReadOutcome::Unchanged => {}
                ReadOutcome::Failed => self.fresh = retry_after_failed_read().await,
            }
        }
    }

    fn take(&mut self, read: ApiResult<Option<CounterDisplayView>>) -> ReadOutcome<CounterDisplayView> {
        match read {
            Ok(Some(display)) => {
                let key = (codec::case_stream(&display.record.code), display.record.version);
                if self.shown_stream.as_deref() != Some(key.0.as_str()) {
                    // Now showing another case: follow its stream instead, and read once
                    // more, since its events routed before this were not heard.
                    if let Some(old) = self.shown_stream.replace(key.0.clone()) {
                        self.events.unfollow(&Topic::Stream(old));
                    }
                    self.events.follow(Topic::Stream(key.0.clone()));
                    self.fresh = true;
                }
                if self.sent_version.as_ref() == Some(&key) {
                    return ReadOutcome::Unchanged;
                }
                self.sent_version = Some(key);
                ReadOutcome::Send(Box::new(display))
            }
            Ok(None) => ReadOutcome::Unchanged,
            Err(error) => {
                tracing::warn!(?error, counter.id = %self.counter, "counter display refresh failed");
                ReadOutcome::Failed
            }
        }
    }
}

struct CaseWatch {
    events: Follower,
    ledger: Ledger,
    code: CaseCode,
    viewer: Principal,
    sent_version: Option<i64>,
    fresh: bool,
}

impl CaseWatch {
    /// As `DisplayWatch::next`: nothing but the boxed watch lives across its awaits.
    async fn next(mut self: Box<Self>) -> Option<(Box<CaseView>, Box<CaseWatch>)> {
        loop {
            if !self.fresh {
                // An event of the case, or missed ones: re-read the truth.
                self.events.recv().await?;
            }
            self.fresh = false;
            match self.take(Box::pin(self.ledger.read_case(&self.code)).await) {
                ReadOutcome::Send(view) => return Some((view, self)),
                ReadOutcome::Unchanged => {}
                ReadOutcome::Failed => self.fresh = retry_after_failed_read().await,
            }
        }
    }

    fn take(
        &mut self,
        read: Result<CaseRecord, feeledger_infrastructure::ledger::LedgerError>,
    ) -> ReadOutcome<CaseView> {
        match read {
            Ok(record) if record.exists() && self.sent_version != Some(record.version) => {
                self.sent_version = Some(record.version);
                ReadOutcome::Send(Box::new(CaseView::new(record, &self.viewer)))
            }
            Ok(_) => ReadOutcome::Unchanged,
            Err(error) => {
                tracing::warn!(?error, case.code = %self.code, "case status refresh failed");
                ReadOutcome::Failed
            }
        }
    }
}

#[Subscription]
impl CounterSubscriptions {
    /// The counter's display now (if any) and again after every change.
    async fn counter_display(
        &self,
        ctx: &Context<'_>,
        counter_id: String,
        agency_code: Option<String>,
    ) -> Result<impl Stream<Item = Box<CounterDisplayView>> + use<>, ApiError> {
        let (agency, counter) = counter_scope(principal(ctx)?, agency_code.as_deref(), &counter_id)?;
        Ok(displays(&api(ctx).live, ledger(ctx), agency, counter))
    }

    /// A case now and again after every change.
    async fn case_status(
        &self,
        ctx: &Context<'_>,
        code: String,
    ) -> Result<impl Stream<Item = Box<CaseView>> + use<>, ApiError> {
        let viewer = principal(ctx)?.clone();
        let code = parse_case_code(&code)?;
        if !viewer.can_read_agency(&code.agency()) {
            return Err(ApiError::forbidden());
        }
        let watch = Box::new(CaseWatch {
            events: api(ctx).live.follow([Topic::Stream(codec::case_stream(&code))]),
            ledger: ledger(ctx).clone(),
            code,
            viewer,
            sent_version: None,
            fresh: true,
        });
        Ok(futures::stream::unfold(watch, CaseWatch::next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future a watch's `next` returns: what each open subscription keeps
    /// while it waits for an event.
    fn parked_size<W, F, Fut>(_: F) -> usize
    where
        F: Fn(Box<W>) -> Fut,
    {
        std::mem::size_of::<Fut>()
    }

    #[test]
    fn a_waiting_screen_holds_neither_a_display_nor_a_read() {
        // 10,000 screens wait in these futures. With a display (~850 bytes) or the read's
        // state kept across the wait it was 1,544 bytes; now the watch itself is boxed too.
        for (watch, size) in
            [("DisplayWatch", parked_size(DisplayWatch::next)), ("CaseWatch", parked_size(CaseWatch::next))]
        {
            assert!(size <= 256, "{watch}::next keeps {size} bytes while waiting");
        }
    }
}
