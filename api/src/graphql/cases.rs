//! Cases: assessing fees, recording payments, reading a case and its history.

use async_graphql::{Context, Enum, InputObject, Json, Object, SimpleObject};
use feeledger_domain::case_fees::{
    self, AssessFees, CancelAssessment, CaseFees, Command, FeeLineRequest, QrStatus, RecordPayment,
};
use feeledger_domain::codes::{AgencyCode, CaseCode, FeeCode};
use feeledger_domain::money::Vnd;
use feeledger_domain::payer::Payer;
use feeledger_infrastructure::ledger::CaseRecord;
use feeledger_infrastructure::storage::{IdempotencyKey, RecordedEvent};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::errors::{ApiError, ApiResult};
use super::scalars::{DateTimeScalar, VndScalar};
use super::{ledger, metadata, now, principal};
use crate::auth::{Principal, Role};

// --- enums ------------------------------------------------------------------------------------

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "FeeKind", remote = "feeledger_domain::fee_schedule::FeeKind")]
pub enum FeeKindGql {
    Phi,
    LePhi,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug, Serialize)]
#[graphql(name = "PaymentChannel", remote = "feeledger_domain::case_fees::PaymentChannel")]
pub enum PaymentChannelGql {
    Vietqr,
    Pos,
    Cash,
    Ewallet,
    PaymentPlatform,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "CaseStatus")]
pub enum CaseStatusGql {
    Assessed,
    AwaitingPayment,
    PartiallyPaid,
    Paid,
    Overpaid,
    Cancelled,
}

impl CaseStatusGql {
    pub fn of(state: &CaseFees) -> CaseStatusGql {
        match state.status {
            case_fees::CaseStatus::New | case_fees::CaseStatus::Assessed => CaseStatusGql::Assessed,
            case_fees::CaseStatus::AwaitingPayment => CaseStatusGql::AwaitingPayment,
            case_fees::CaseStatus::PartiallyPaid => CaseStatusGql::PartiallyPaid,
            case_fees::CaseStatus::Paid => CaseStatusGql::Paid,
            case_fees::CaseStatus::Overpaid => CaseStatusGql::Overpaid,
            case_fees::CaseStatus::Cancelled => CaseStatusGql::Cancelled,
        }
    }
}

// --- output types ---------------------------------------------------------------------------

/// A case's fees, as folded from its event stream.
pub struct CaseView {
    record: CaseRecord,
    /// Auditors see the payer's full identity number in event data; everyone else a mask.
    reveal_personal_data: bool,
}

impl CaseView {
    pub fn new(record: CaseRecord, viewer: &Principal) -> Self {
        CaseView { record, reveal_personal_data: viewer.role == Role::Auditor }
    }

    fn state(&self) -> &CaseFees {
        &self.record.state
    }
}

#[derive(SimpleObject)]
#[graphql(name = "FeeLine")]
pub struct FeeLineView {
    fee_code: String,
    name: String,
    kind: FeeKindGql,
    quantity: i32,
    unit_amount: VndScalar,
    amount: VndScalar,
    /// What the payments have paid of this line (lệ phí lines are paid first).
    paid: VndScalar,
    /// What is left to pay on this line.
    outstanding: VndScalar,
}

#[derive(SimpleObject)]
#[graphql(name = "Payer")]
pub struct PayerView {
    name: String,
    /// e.g. `******8870`; the full number is never returned.
    masked_id: Option<String>,
}

impl FeeLineView {
    pub fn of(state: &CaseFees) -> Vec<FeeLineView> {
        let Some(assessed) = &state.assessment else { return Vec::new() };
        assessed
            .lines
            .iter()
            .enumerate()
            .map(|(index, line)| {
                let paid = state.paid_per_line.get(index).copied().unwrap_or(Vnd::ZERO);
                FeeLineView {
                    fee_code: line.fee_code.to_string(),
                    name: line.name.clone(),
                    kind: line.kind.into(),
                    quantity: i32::try_from(line.quantity).unwrap_or(i32::MAX),
                    unit_amount: line.unit_amount.into(),
                    amount: line.amount.into(),
                    paid: paid.into(),
                    // An allocation never pays a line beyond its amount: what is left, never below zero.
                    outstanding: line.amount.excess_over(paid).into(),
                }
            })
            .collect()
    }
}

impl PayerView {
    pub fn of(payer: Option<&Payer>) -> PayerView {
        match payer {
            Some(payer) => PayerView { name: payer.name.clone(), masked_id: payer.masked_id() },
            None => PayerView { name: String::new(), masked_id: None },
        }
    }
}

#[derive(SimpleObject)]
#[graphql(name = "QrCode")]
pub struct QrView {
    id: async_graphql::ID,
    payload: String,
    amount: VndScalar,
    reference: String,
    svg_url: String,
    png_url: String,
    expires_at: DateTimeScalar,
    /// Whether the QR can still be paid: active and asking for exactly what is outstanding.
    payable: bool,
    expired: bool,
}

#[derive(SimpleObject)]
#[graphql(name = "Payment")]
pub struct PaymentView {
    id: async_graphql::ID,
    amount: VndScalar,
    channel: PaymentChannelGql,
    reference: String,
    provider: Option<String>,
    received_at: DateTimeScalar,
    reconciled: bool,
}

/// One stored event, as auditors and history views show it.
#[derive(SimpleObject)]
#[graphql(name = "EventRecord")]
pub struct EventRecordView {
    /// Global position in the log, as a string (it is a 64-bit number).
    position: String,
    stream_version: i32,
    #[graphql(name = "type")]
    event_type: String,
    recorded_at: DateTimeScalar,
    /// Who appended it (the token's subject), when known.
    actor: Option<String>,
    data: Json<Value>,
    /// SHA-256 chain hash, hex.
    hash: String,
}

impl EventRecordView {
    pub fn new(event: &RecordedEvent, reveal_personal_data: bool) -> Self {
        let mut data = event.payload.clone();
        if !reveal_personal_data {
            mask_personal_data(&mut data);
        }
        EventRecordView {
            position: event.position.to_string(),
            stream_version: i32::try_from(event.stream_version).unwrap_or(i32::MAX),
            event_type: event.event_type.clone(),
            recorded_at: DateTimeScalar(event.recorded_at),
            actor: event.metadata.get("actor").and_then(Value::as_str).map(str::to_owned),
            data: Json(data),
            hash: hex::encode(&event.hash),
        }
    }
}

/// Replaces any payer identity number in event data by its masked form.
pub fn mask_personal_data(data: &mut Value) {
    if let Some(id) = data.pointer_mut("/payer/id_number")
        && let Some(full) = id.as_str()
    {
        let masked =
            feeledger_domain::payer::IdNumber::parse(full).map(|n| n.masked()).unwrap_or_else(|_| "******".into());
        *id = Value::String(masked);
    }
}

#[Object(name = "Case")]
impl CaseView {
    async fn code(&self) -> &str {
        self.record.code.as_str()
    }

    async fn agency_code(&self) -> String {
        self.record.code.agency().to_string()
    }

    async fn procedure_name(&self) -> Option<&str> {
        self.state().assessment.as_ref().map(|a| a.procedure_name.as_str())
    }

    async fn status(&self) -> CaseStatusGql {
        CaseStatusGql::of(self.state())
    }

    /// The procedure code (mã TTHC) recorded at assessment.
    async fn procedure_code(&self) -> Option<String> {
        self.state().assessment.as_ref().and_then(|a| a.procedure_code.as_ref()).map(ToString::to_string)
    }

    async fn total(&self) -> VndScalar {
        self.state().total().into()
    }

    async fn paid(&self) -> VndScalar {
        self.state().paid.into()
    }

    async fn outstanding(&self) -> VndScalar {
        self.state().outstanding().into()
    }

    /// Received beyond what is owed; kept for refund.
    async fn overpaid(&self) -> VndScalar {
        self.state().overpaid().into()
    }

    async fn lines(&self) -> Vec<FeeLineView> {
        FeeLineView::of(self.state())
    }

    async fn payer(&self) -> PayerView {
        PayerView::of(self.state().assessment.as_ref().map(|a| &a.payer))
    }

    /// The latest QR of the case (superseded ones are in the history).
    async fn qr(&self) -> Option<QrView> {
        let current = self.state().qr.as_ref()?;
        let payable = self.state().payable_qr().is_some();
        Some(qr_view(&current.qr, payable, current.status == QrStatus::Expired))
    }

    async fn payments(&self) -> Vec<PaymentView> {
        self.state()
            .payments
            .iter()
            .map(|p| PaymentView {
                id: p.payment_id.to_string().into(),
                amount: p.amount.into(),
                channel: p.channel.into(),
                reference: p.reference.clone(),
                provider: p.provider.clone(),
                received_at: DateTimeScalar(p.received_at),
                reconciled: self.state().reconciled.contains_key(&p.payment_id),
            })
            .collect()
    }

    async fn schedule_version(&self) -> Option<i32> {
        self.state().assessment.as_ref().map(|a| i32::try_from(a.schedule_version).unwrap_or(i32::MAX))
    }

    async fn assessed_at(&self) -> Option<DateTimeScalar> {
        self.state().assessment.as_ref().map(|a| DateTimeScalar(a.assessed_at))
    }

    async fn updated_at(&self) -> Option<DateTimeScalar> {
        self.record.events.last().map(|e| DateTimeScalar(e.recorded_at))
    }

    async fn cancellation_reason(&self) -> Option<&str> {
        self.state().cancelled.as_ref().map(|c| c.reason.as_str())
    }

    /// The stream version the state reflects.
    async fn version(&self) -> i32 {
        i32::try_from(self.record.version).unwrap_or(i32::MAX)
    }

    async fn events(&self) -> Vec<EventRecordView> {
        self.record.events.iter().map(|e| EventRecordView::new(e, self.reveal_personal_data)).collect()
    }

    /// Every receipt issued for the case (cancelled ones flagged), oldest first.
    async fn receipts(&self) -> ApiResult<Vec<super::finance::ReceiptView>> {
        self.state().receipts.iter().map(|r| super::finance::receipt_view(&self.record, Some(r.receipt_id))).collect()
    }
}

pub fn qr_view(qr: &case_fees::QrIssued, payable: bool, expired: bool) -> QrView {
    QrView {
        id: qr.qr_id.to_string().into(),
        payload: qr.payload.clone(),
        amount: qr.amount.into(),
        reference: qr.reference.to_string(),
        svg_url: format!("/qr/{}.svg", qr.qr_id),
        png_url: format!("/qr/{}.png", qr.qr_id),
        expires_at: DateTimeScalar(qr.expires_at),
        payable,
        expired,
    }
}

/// A case as it was at an instant, with the events up to then.
pub struct CaseHistoryView {
    case: CaseView,
}

#[Object(name = "CaseHistory")]
impl CaseHistoryView {
    async fn state(&self) -> &CaseView {
        &self.case
    }

    async fn events(&self) -> Vec<EventRecordView> {
        self.case.record.events.iter().map(|e| EventRecordView::new(e, self.case.reveal_personal_data)).collect()
    }
}

// --- inputs -----------------------------------------------------------------------------------

#[derive(InputObject, Serialize)]
pub struct PayerInput {
    name: String,
    id_number: Option<String>,
}

#[derive(InputObject, Serialize)]
pub struct FeeLineInput {
    fee_code: String,
    quantity: i32,
}

#[derive(InputObject, Serialize)]
pub struct AssessFeesInput {
    case_code: String,
    agency_code: String,
    procedure_name: String,
    payer: PayerInput,
    lines: Vec<FeeLineInput>,
    /// Makes a retried request return the first result instead of failing or duplicating.
    idempotency_key: Option<String>,
    /// The procedure code (mã TTHC), e.g. `2.000815.000.00.00.H34`; printed on receipts.
    procedure_code: Option<String>,
}

#[derive(InputObject, Serialize)]
pub struct RecordPaymentInput {
    case_code: String,
    #[serde(serialize_with = "serialize_vnd")]
    amount: VndScalar,
    channel: PaymentChannelGql,
    /// Receipt or slip number of the POS terminal or cash book.
    reference: String,
    idempotency_key: String,
}

fn serialize_vnd<S: serde::Serializer>(amount: &VndScalar, serializer: S) -> Result<S::Ok, S::Error> {
    amount.0.serialize(serializer)
}

// --- access -----------------------------------------------------------------------------------

pub(crate) fn parse_case_code(text: &str) -> ApiResult<CaseCode> {
    CaseCode::parse(text.trim()).map_err(ApiError::validation)
}

/// Reads a case the caller may see; `None` when it has no events.
async fn readable_case(ctx: &Context<'_>, code: &str) -> ApiResult<(CaseRecord, Principal)> {
    let principal = principal(ctx)?.clone();
    let code = parse_case_code(code)?;
    if !principal.can_read_agency(&code.agency()) {
        return Err(ApiError::forbidden());
    }
    Ok((ledger(ctx).read_case(&code).await?, principal))
}

fn operator_of(ctx: &Context<'_>, agency: &AgencyCode) -> ApiResult<Principal> {
    let principal = principal(ctx)?;
    if principal.can_operate_in(agency) { Ok(principal.clone()) } else { Err(ApiError::forbidden()) }
}

// --- queries ----------------------------------------------------------------------------------

#[derive(Default, Debug)]
pub struct CaseQueries;

#[Object]
impl CaseQueries {
    /// A case's fees now; null when no fees were assessed for that code.
    async fn case(&self, ctx: &Context<'_>, code: String) -> ApiResult<Option<CaseView>> {
        let (record, principal) = readable_case(ctx, &code).await?;
        Ok(record.exists().then(|| CaseView::new(record, &principal)))
    }

    /// A case as it was at `asOf` (default: now), replayed from its events.
    async fn case_history(
        &self,
        ctx: &Context<'_>,
        code: String,
        as_of: Option<DateTimeScalar>,
    ) -> ApiResult<CaseHistoryView> {
        let principal = principal(ctx)?.clone();
        let code = parse_case_code(&code)?;
        if !principal.can_read_agency(&code.agency()) {
            return Err(ApiError::forbidden());
        }
        let as_of = as_of.map_or_else(|| now(ctx), |t| t.0);
        let record = ledger(ctx).read_case_as_of(&code, as_of).await?;
        if !record.exists() {
            return Err(ApiError::NotFound(format!("case {code} has no events at or before {as_of}")));
        }
        Ok(CaseHistoryView { case: CaseView::new(record, &principal) })
    }
}

// --- mutations --------------------------------------------------------------------------------

#[derive(Default, Debug)]
pub struct CaseMutations;

#[Object]
impl CaseMutations {
    /// Assesses a case's fees from the agency's fee schedule in force today.
    async fn assess_fees(&self, ctx: &Context<'_>, input: AssessFeesInput) -> ApiResult<CaseView> {
        let case_code = parse_case_code(&input.case_code)?;
        let agency_code = AgencyCode::parse(input.agency_code.trim()).map_err(ApiError::validation)?;
        let principal = operator_of(ctx, &agency_code)?;
        let payer = Payer::new(&input.payer.name, input.payer.id_number.as_deref()).map_err(ApiError::validation)?;
        let lines = input
            .lines
            .iter()
            .map(|line| {
                let fee_code = FeeCode::parse(line.fee_code.trim()).map_err(ApiError::validation)?;
                let quantity = u32::try_from(line.quantity)
                    .map_err(|_| ApiError::Validation(format!("quantity of {fee_code} must be positive")))?;
                Ok(FeeLineRequest { fee_code, quantity })
            })
            .collect::<ApiResult<Vec<_>>>()?;
        let procedure_code = match input.procedure_code.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(code) => Some(
                feeledger_domain::procedure::ProcedureCode::parse(code)
                    .map_err(|e| ApiError::Validation(format!("procedureCode: {e}")))?,
            ),
        };
        let idempotency = idempotency_key(&input, "assessFees", input.idempotency_key.as_deref())?;
        let at = now(ctx);
        // The schedule in force is read with the case, in one statement.
        let command = |schedule| {
            Command::AssessFees(AssessFees {
                case_code: case_code.clone(),
                agency_code: agency_code.clone(),
                procedure_name: input.procedure_name.clone(),
                payer: payer.clone(),
                lines: lines.clone(),
                schedule,
                counter_id: principal.counter.clone(),
                now: at,
                procedure_code: procedure_code.clone(),
            })
        };
        let metadata = metadata(ctx, &principal);
        let record = ledger(ctx).assess(&case_code, &agency_code, at, command, &metadata, idempotency.as_ref()).await?;
        Ok(CaseView::new(record, &principal))
    }

    /// Records a payment taken at the counter (POS card, cash) or reported by hand.
    async fn record_payment(&self, ctx: &Context<'_>, input: RecordPaymentInput) -> ApiResult<CaseView> {
        let case_code = parse_case_code(&input.case_code)?;
        let principal = operator_of(ctx, &case_code.agency())?;
        let reference = input.reference.trim();
        if reference.is_empty() || reference.chars().count() > 100 {
            return Err(ApiError::Validation("reference must be 1 to 100 characters".into()));
        }
        let idempotency = idempotency_key(&input, "recordPayment", Some(&input.idempotency_key))?;
        let command = Command::RecordPayment(RecordPayment {
            payment_id: Uuid::now_v7(),
            idempotency_key: format!("counter:{}", input.idempotency_key.trim()),
            amount: input.amount.0,
            channel: input.channel.into(),
            reference: reference.to_owned(),
            provider: None,
            bank_reference: None,
            qr_id: None,
            payer_account: None,
            received_at: now(ctx),
        });
        let record = ledger(ctx).execute(&case_code, command, &metadata(ctx, &principal), idempotency.as_ref()).await?;
        Ok(CaseView::new(record, &principal))
    }

    /// Cancels an assessment that has received no money (to correct it, assess again).
    async fn cancel_assessment(&self, ctx: &Context<'_>, case_code: String, reason: String) -> ApiResult<CaseView> {
        let case_code = parse_case_code(&case_code)?;
        let principal = operator_of(ctx, &case_code.agency())?;
        let command = Command::CancelAssessment(CancelAssessment { reason, now: now(ctx) });
        let record = ledger(ctx).execute(&case_code, command, &metadata(ctx, &principal), None).await?;
        Ok(CaseView::new(record, &principal))
    }
}

fn idempotency_key(request: &impl Serialize, scope: &str, key: Option<&str>) -> ApiResult<Option<IdempotencyKey>> {
    match key.map(str::trim) {
        None => Ok(None),
        Some(k) if k.is_empty() || k.len() > 200 => {
            Err(ApiError::Validation("idempotencyKey must be 1 to 200 characters".into()))
        }
        Some(k) => Ok(Some(IdempotencyKey::new(scope, k, request))),
    }
}
