//! The public payment page's data (`/pay/{caseCode}`): no token, rate-limited per client address
//! and globally (`crate::rate_limit`), looked up by the exact case code only.
//!
//! - `publicCase(code)`: the case as a citizen may see it, or `null`. Unknown codes, cases of an
//!   agency that has not switched public payment on, and codes with no assessment all answer
//!   the same `null`, after the same reads (the agency and the case stream are always both read).
//! - `requestPaymentQr(code)`: the case with a dynamic VietQR for exactly what is left, issued
//!   on demand by the counter's own command (`IssueQr`, same NAPAS payload rules) for the
//!   pseudo-counter [`PUBLIC_COUNTER`]; an active QR with more than [`QR_REUSE_MARGIN_SECONDS`]
//!   left is returned as it is, so reloading the page appends nothing.
//! - `publicCaseStatus(code)` (subscription): the case now and after every change.
//!
//! Only the name and masked identity number of the payer are shown, as on the province's own
//! portal; no event data, no payment details beyond amounts.

use async_graphql::{Context, Object, SimpleObject, Subscription};
use chrono::Duration;
use feeledger_domain::case_fees::{CaseStatus, Command, IssueQr};
use feeledger_domain::codes::{CaseCode, CounterId};
use feeledger_infrastructure::codec;
use feeledger_infrastructure::ledger::{CaseRecord, Ledger};
use feeledger_infrastructure::storage::EventMetadata;
use futures::Stream;
use uuid::Uuid;

use super::cases::{CaseStatusGql, FeeLineView, PayerView, parse_case_code};
use super::errors::{ApiError, ApiResult};
use super::scalars::{DateTimeScalar, VndScalar};
use super::{api, ledger, now};
use crate::live_routes::{Follower, Topic};
use crate::rate_limit::ClientAddress;

/// The counter id QRs issued from the public page carry (no agency has a counter of that name
/// on a screen, so no counter display switches to a case paid from home).
pub const PUBLIC_COUNTER: &str = "cong-thanh-toan";
/// A QR with less than this left is replaced by a new one when the page asks.
pub const QR_REUSE_MARGIN_SECONDS: i64 = 120;

/// Counts one request of the caller against the public limits.
fn limit(ctx: &Context<'_>) -> ApiResult<()> {
    let client = ctx.data_opt::<ClientAddress>().map_or(std::net::IpAddr::from([0, 0, 0, 0]), |address| address.0);
    api(ctx).public_limit.check(client).map_err(|limited| ApiError::RateLimited(limited.retry_after_seconds()))
}

/// The VietQR deep-link app code (dl.vietqr.io) of the bank that holds the agency's account,
/// for the banks whose BIN we know; the page then offers "open in bank app".
fn bank_app_code(bin: &str) -> Option<&'static str> {
    Some(match bin {
        "970415" => "icb",
        "970436" => "vcb",
        "970418" => "bidv",
        "970405" => "vba",
        "970422" => "mb",
        "970407" => "tcb",
        "970416" => "acb",
        "970432" => "vpb",
        "970423" => "tpb",
        "970403" => "stb",
        _ => return None,
    })
}

/// A case as the public page shows it.
pub struct PublicCaseView {
    agency_name: String,
    record: CaseRecord,
}

#[derive(SimpleObject)]
#[graphql(name = "PublicQr")]
pub struct PublicQrView {
    /// The EMVCo/NAPAS string the image encodes.
    payload: String,
    amount: VndScalar,
    /// What to type as the transfer content when paying by hand (the case's payment reference).
    transfer_content: String,
    svg_url: String,
    png_url: String,
    expires_at: DateTimeScalar,
    bank_bin: String,
    account_number: String,
    account_name: String,
    /// The dl.vietqr.io code of the receiving bank, when known (for the bank-app button).
    bank_app_code: Option<String>,
}

#[derive(SimpleObject)]
#[graphql(name = "PublicReceipt")]
pub struct PublicReceiptView {
    printed_number: String,
    serial: String,
    amount: VndScalar,
    issued_at: DateTimeScalar,
    cancelled: bool,
    /// The printable receipt (`/receipts/{id}`).
    url: String,
}

#[Object(name = "PublicCase")]
impl PublicCaseView {
    async fn code(&self) -> &str {
        self.record.code.as_str()
    }

    async fn agency_code(&self) -> String {
        self.record.code.agency().to_string()
    }

    async fn agency_name(&self) -> &str {
        &self.agency_name
    }

    async fn procedure_name(&self) -> Option<&str> {
        self.record.state.assessment.as_ref().map(|a| a.procedure_name.as_str())
    }

    async fn procedure_code(&self) -> Option<String> {
        self.record.state.assessment.as_ref().and_then(|a| a.procedure_code.as_ref()).map(ToString::to_string)
    }

    /// Name and masked identity number only.
    async fn payer(&self) -> PayerView {
        PayerView::of(self.record.state.assessment.as_ref().map(|a| &a.payer))
    }

    async fn lines(&self) -> Vec<FeeLineView> {
        FeeLineView::of(&self.record.state)
    }

    async fn status(&self) -> CaseStatusGql {
        CaseStatusGql::of(&self.record.state)
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

    /// Paid in full ("Thanh toán thành công").
    async fn paid_in_full(&self) -> bool {
        matches!(self.record.state.status, CaseStatus::Paid | CaseStatus::Overpaid)
    }

    /// What to tell the citizen, in Vietnamese.
    async fn message(&self) -> &'static str {
        let state = &self.record.state;
        match state.status {
            CaseStatus::Paid | CaseStatus::Overpaid => "Thanh toán thành công",
            CaseStatus::Cancelled => "Hồ sơ đã hủy thu phí, lệ phí.",
            CaseStatus::PartiallyPaid => "Đã nhận một phần. Vui lòng thanh toán số tiền còn lại.",
            _ => "Quét mã QR bằng ứng dụng ngân hàng để thanh toán.",
        }
    }

    /// The QR that can be paid now (exactly what is left), if one was issued and is valid.
    async fn qr(&self) -> Option<PublicQrView> {
        let qr = self.record.state.payable_qr()?;
        Some(PublicQrView {
            payload: qr.payload.clone(),
            amount: qr.amount.into(),
            transfer_content: qr.reference.to_string(),
            svg_url: format!("/qr/{}.svg", qr.qr_id),
            png_url: format!("/qr/{}.png", qr.qr_id),
            expires_at: DateTimeScalar(qr.expires_at),
            bank_bin: qr.beneficiary.bin.to_string(),
            account_number: qr.beneficiary.number.to_string(),
            account_name: qr.beneficiary.name.clone(),
            bank_app_code: bank_app_code(qr.beneficiary.bin.as_str()).map(str::to_owned),
        })
    }

    /// The case's receipts, oldest first.
    async fn receipts(&self) -> Vec<PublicReceiptView> {
        let state = &self.record.state;
        state
            .receipts
            .iter()
            .map(|r| PublicReceiptView {
                printed_number: r.printed_number(),
                serial: r.serial.clone(),
                amount: r.amount.into(),
                issued_at: DateTimeScalar(r.issued_at),
                cancelled: state.cancelled_receipts.iter().any(|c| c.receipt_id == r.receipt_id),
                url: format!("/receipts/{}", r.receipt_id),
            })
            .collect()
    }

    /// Grows with every change of the case.
    async fn version(&self) -> i32 {
        i32::try_from(self.record.version).unwrap_or(i32::MAX)
    }
}

/// The case if the public may see it: assessed, of an agency with public payment on. Both the
/// agency and the case are read whatever the outcome, so the answer takes as long for every code.
async fn load_public(ledger: &Ledger, code: &CaseCode) -> ApiResult<Option<PublicCaseView>> {
    let agency_code = code.agency();
    let (agency, record) = tokio::join!(ledger.agency(&agency_code), ledger.read_case(code));
    let (agency, record) = (agency?, record?);
    let visible = agency.current.filter(|a| a.public_payment).filter(|_| record.state.assessment.is_some());
    Ok(visible.map(|agency| PublicCaseView { agency_name: agency.name, record }))
}

#[derive(Default, Debug)]
pub struct PublicQueries;

#[Object]
impl PublicQueries {
    /// A case for the public payment page, by its exact code; no token. `null` when there is no
    /// such case or its agency does not take payments on the public page (one answer for both).
    async fn public_case(&self, ctx: &Context<'_>, code: String) -> ApiResult<Option<PublicCaseView>> {
        limit(ctx)?;
        let code = parse_case_code(&code)?;
        load_public(ledger(ctx), &code).await
    }
}

#[derive(Default, Debug)]
pub struct PublicMutations;

#[Object]
impl PublicMutations {
    /// A dynamic VietQR for exactly what the case still owes, for the public page; no token.
    /// Returns the case with its QR (`qr`), `null` as `publicCase` does, `CONFLICT` when
    /// nothing is left to pay.
    async fn request_payment_qr(&self, ctx: &Context<'_>, code: String) -> ApiResult<Option<PublicCaseView>> {
        limit(ctx)?;
        let code = parse_case_code(&code)?;
        let ledger = ledger(ctx);
        let Some(shown) = load_public(ledger, &code).await? else { return Ok(None) };
        let at = now(ctx);
        let reusable = shown
            .record
            .state
            .payable_qr()
            .is_some_and(|qr| qr.expires_at - at > Duration::seconds(QR_REUSE_MARGIN_SECONDS));
        if reusable {
            return Ok(Some(shown));
        }
        let agency = ledger.agency(&code.agency()).await?.current.ok_or(ApiError::Internal)?;
        let ttl = Duration::seconds(i64::from(api(ctx).qr_ttl_seconds.max(1)));
        let command = Command::IssueQr(IssueQr {
            qr_id: Uuid::new_v4(),
            counter_id: CounterId::parse(PUBLIC_COUNTER).map_err(|_| ApiError::Internal)?,
            beneficiary: agency.bank_account,
            now: at,
            expires_at: at + ttl,
        });
        let metadata = EventMetadata {
            actor: Some("public-payment-page".into()),
            role: Some("public".into()),
            request_id: ctx.data_opt::<super::RequestId>().map(|r| r.0.clone()),
            ..EventMetadata::default()
        };
        let record = ledger.execute(&code, command, &metadata, None).await?;
        Ok(Some(PublicCaseView { agency_name: agency.name, record }))
    }
}

struct PublicWatch {
    events: Follower,
    ledger: Ledger,
    code: CaseCode,
    sent_version: Option<i64>,
    fresh: bool,
}

impl PublicWatch {
    async fn next(mut self) -> Option<(Option<PublicCaseView>, PublicWatch)> {
        loop {
            if !self.fresh {
                // An event of the case, or missed ones: re-read the truth.
                self.events.recv().await?;
            }
            let first = self.fresh;
            self.fresh = false;
            match load_public(&self.ledger, &self.code).await {
                Ok(Some(view)) if self.sent_version != Some(view.record.version) => {
                    self.sent_version = Some(view.record.version);
                    return Some((Some(view), self));
                }
                // Not visible: say so once (like the query), then only changes.
                Ok(None) if first => return Some((None, self)),
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(?error, case.code = %self.code, "public case refresh failed");
                    self.fresh = super::counter::retry_after_failed_read().await;
                }
            }
        }
    }
}

#[derive(Default, Debug)]
pub struct PublicSubscriptions;

#[Subscription]
impl PublicSubscriptions {
    /// The public view of a case now and after every change (no token; counts once against the
    /// rate limit). `null` first when the case is not visible, as `publicCase`.
    async fn public_case_status(
        &self,
        ctx: &Context<'_>,
        code: String,
    ) -> Result<impl Stream<Item = Option<PublicCaseView>> + use<>, ApiError> {
        limit(ctx)?;
        let code = parse_case_code(&code)?;
        let watch = PublicWatch {
            events: api(ctx).live.follow([Topic::Stream(codec::case_stream(&code))]),
            ledger: ledger(ctx).clone(),
            code,
            sent_version: None,
            fresh: true,
        };
        Ok(futures::stream::unfold(watch, PublicWatch::next))
    }
}
