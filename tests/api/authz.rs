//! The authorisation matrix: for every operation of the API and every kind of token, what it may
//! do in its own agency (A) and in another one (B). Read [`MATRIX`] for the whole policy.
//!
//! Each cell is run against a live service on both backends: agencies A and B are configured and
//! each has cases in every state an operation needs (assessed, paid, with a receipt, a fresh
//! code to assess), unmatched credits and a counter that has shown a case. A refused call must
//! answer FORBIDDEN. An allowed read must answer data. An allowed mutation must not answer
//! UNAUTHENTICATED or FORBIDDEN, but may be refused by a business rule (VALIDATION, NOT_FOUND,
//! CONFLICT): the second principal allowed to issue the same receipt gets CONFLICT, and the
//! remittance asks for money that is not payable (VALIDATION) so as not to move any.
//! Every mismatch is collected before failing, so one run shows the whole difference.
//!
//! Then every operation is called without a token and with forged, expired and malformed ones:
//! each must answer UNAUTHENTICATED and append nothing.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::Utc;
use feeledger_api::auth::{Role, TokenRequest, TokenService};
use feeledger_domain::codes::{AgencyCode, CounterId};
use feeledger_infrastructure::settings::{ProviderSecrets, Secret};
use feeledger_tests::{TestApp, TestDatabase, spawn_app_with, spawn_each_backend};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A bound on a broken test's running time (a subscription that never answers), not a
/// performance assertion.
const PATIENCE: Duration = Duration::from_secs(10);
const SEPAY_KEY: &str = "sepay-authz-test-api-key";

// --- the policy -------------------------------------------------------------------------------

/// Where a token may do something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum May {
    /// Nowhere: FORBIDDEN in agency A and in agency B.
    No,
    /// In its own agency A only; FORBIDDEN in agency B.
    Own,
    /// In every agency. (For an operation not about an agency: allowed.)
    All,
}
use May::{All, No, Own};

/// The tokens, one per column of [`MATRIX`]. Scoped tokens are scoped to agency A.
const COLUMNS: [Column; 8] = [
    Column { label: "officer@A/quay-1", role: Role::Officer, scoped: true, counter: Some("quay-1") },
    Column { label: "display@A/quay-1", role: Role::Display, scoped: true, counter: Some("quay-1") },
    Column { label: "finance@A", role: Role::Finance, scoped: true, counter: None },
    Column { label: "finance", role: Role::Finance, scoped: false, counter: None },
    Column { label: "auditor@A", role: Role::Auditor, scoped: true, counter: None },
    Column { label: "auditor", role: Role::Auditor, scoped: false, counter: None },
    Column { label: "admin", role: Role::Admin, scoped: false, counter: None },
    Column { label: "oversight@A", role: Role::Oversight, scoped: true, counter: None },
];

/// Who may do what. Rows run top to bottom; a mutation changes only its own case or credit, so
/// no row depends on the outcome of another, and rebuilding a projection comes last.
#[rustfmt::skip]
const MATRIX: &[(Op, [May; 8])] = &[
    //                                   officer  display  finance  finance  auditor  auditor  admin    oversight
    //                                   @A/q-1   @A/q-1   @A       (all)    @A       (all)             @A
    // --- reads ---
    (Op::Me,                            [All,     All,     All,     All,     All,     All,     All,     All]),
    (Op::Case,                          [Own,     No,      Own,     All,     Own,     All,     All,     No]),
    (Op::CaseHistory,                   [Own,     No,      Own,     All,     Own,     All,     All,     No]),
    (Op::CounterDisplay,                [Own,     Own,     Own,     All,     Own,     All,     All,     No]),
    (Op::CounterDisplayOfQuay2,         [Own,     No,      Own,     All,     Own,     All,     All,     No]),
    // A display reads its agency's configuration (the citizen's screen shows its name and account)
    // and, through the same check, its published fee schedules.
    (Op::Agency,                        [Own,     Own,     Own,     All,     Own,     All,     All,     No]),
    (Op::FeeSchedules,                  [Own,     Own,     Own,     All,     Own,     All,     All,     No]),
    (Op::FeeScheduleInForce,            [Own,     Own,     Own,     All,     Own,     All,     All,     No]),
    (Op::UnmatchedCredits,              [Own,     No,      Own,     All,     Own,     All,     All,     No]),
    (Op::UnmatchedCreditsOfNoAgency,    [No,      No,      No,      All,     No,      All,     All,     No]),
    (Op::CreditsAwaitingRefund,         [Own,     No,      Own,     All,     Own,     All,     All,     No]),
    (Op::DailyReconciliation,           [No,      No,      Own,     All,     Own,     All,     All,     No]),
    (Op::TreasuryReport,                [No,      No,      Own,     All,     Own,     All,     All,     No]),
    (Op::CashlessRate,                  [No,      No,      Own,     All,     Own,     All,     All,     No]),
    (Op::ReceiptUsage,                  [No,      No,      Own,     All,     Own,     All,     All,     No]),
    (Op::Projections,                   [No,      No,      All,     All,     All,     All,     All,     No]),
    (Op::AuditEvents,                   [No,      No,      No,      No,      No,      All,     No,      No]),
    (Op::DailyDigests,                  [No,      No,      All,     All,     All,     All,     All,     No]),
    // Aggregates of a subtree (no case, no person): the oversight token of A reads A's.
    (Op::LeagueTable,                   [No,      No,      Own,     All,     Own,     All,     All,     Own]),
    (Op::Targets,                       [No,      No,      All,     All,     All,     All,     All,     All]),
    (Op::Agencies,                      [No,      No,      All,     All,     All,     All,     All,     No]),
    // --- subscriptions (over /graphql/ws) ---
    (Op::CaseStatusSubscription,        [Own,     No,      Own,     All,     Own,     All,     All,     No]),
    (Op::CounterDisplaySubscription,    [Own,     Own,     Own,     All,     Own,     All,     All,     No]),
    // The same over the citizen's plain display feed (/live/counter-display).
    (Op::CounterDisplayFeed,            [Own,     Own,     Own,     All,     Own,     All,     All,     No]),
    (Op::ProjectionProgress,            [No,      No,      All,     All,     All,     All,     All,     No]),
    // --- counter work ---
    (Op::AssessFees,                    [Own,     No,      No,      No,      No,      No,      No,      No]),
    (Op::IssueQr,                       [Own,     No,      No,      No,      No,      No,      No,      No]),
    (Op::IssueQrAtQuay2,                [No,      No,      No,      No,      No,      No,      No,      No]),
    (Op::RecordPayment,                 [Own,     No,      No,      No,      No,      No,      No,      No]),
    (Op::CancelAssessment,              [Own,     No,      No,      No,      No,      No,      No,      No]),
    (Op::IssueReceipt,                  [Own,     No,      Own,     All,     No,      No,      No,      No]),
    (Op::CancelReceipt,                 [Own,     No,      Own,     All,     No,      No,      No,      No]),
    (Op::AssignCredit,                  [Own,     No,      Own,     All,     No,      No,      No,      No]),
    (Op::MarkCreditForRefund,           [Own,     No,      Own,     All,     No,      No,      No,      No]),
    // Ids that do not exist: NOT_FOUND for who may act on one, FORBIDDEN for who never may.
    (Op::CancelUnknownReceipt,          [All,     No,      All,     All,     No,      No,      No,      No]),
    (Op::AssignUnknownCredit,           [All,     No,      All,     All,     No,      No,      No,      No]),
    (Op::MarkUnknownCreditForRefund,    [All,     No,      All,     All,     No,      No,      No,      No]),
    // --- finance ---
    (Op::ImportBankStatement,           [No,      No,      Own,     All,     No,      No,      No,      No]),
    (Op::ReconcileDay,                  [No,      No,      Own,     All,     No,      No,      No,      No]),
    (Op::RemitToTreasury,               [No,      No,      Own,     All,     No,      No,      No,      No]),
    // --- administration ---
    (Op::ConfigureAgency,               [No,      No,      No,      No,      No,      No,      All,     No]),
    (Op::PublishFeeSchedule,            [No,      No,      No,      No,      No,      No,      All,     No]),
    (Op::SetTarget,                     [No,      No,      No,      No,      No,      No,      All,     No]),
    (Op::RebuildProjection,             [No,      No,      No,      No,      No,      No,      All,     No]),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Me,
    Case,
    CaseHistory,
    /// `counterDisplay` of quay-1, the display token's own counter.
    CounterDisplay,
    /// `counterDisplay` of quay-2: another counter of the same agency.
    CounterDisplayOfQuay2,
    Agency,
    FeeSchedules,
    FeeScheduleInForce,
    UnmatchedCredits,
    /// `unmatchedCredits(agencyCode: "")`: credits whose agency is unknown.
    UnmatchedCreditsOfNoAgency,
    /// `creditsAwaitingRefund(agencyCode)`: what finance still owes the senders.
    CreditsAwaitingRefund,
    DailyReconciliation,
    TreasuryReport,
    CashlessRate,
    ReceiptUsage,
    Projections,
    /// The whole log, personal data included: unscoped auditors only.
    AuditEvents,
    DailyDigests,
    CaseStatusSubscription,
    CounterDisplaySubscription,
    CounterDisplayFeed,
    ProjectionProgress,
    AssessFees,
    IssueQr,
    /// `issueQr` at quay-2 with an officer token for quay-1.
    IssueQrAtQuay2,
    RecordPayment,
    CancelAssessment,
    IssueReceipt,
    CancelReceipt,
    AssignCredit,
    MarkCreditForRefund,
    CancelUnknownReceipt,
    AssignUnknownCredit,
    MarkUnknownCreditForRefund,
    ImportBankStatement,
    ReconcileDay,
    RemitToTreasury,
    ConfigureAgency,
    PublishFeeSchedule,
    RebuildProjection,
    LeagueTable,
    Targets,
    Agencies,
    SetTarget,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Query,
    Subscription,
    Mutation,
}

#[derive(Debug)]
struct Column {
    label: &'static str,
    role: Role,
    /// Scoped to agency A (else to no agency).
    scoped: bool,
    counter: Option<&'static str>,
}

// --- the two agencies and what each has ----------------------------------------------------

const A: &str = "H34.22.6";
const B: &str = "H34.22.7";

/// One agency and the things in it the operations act on.
#[derive(Debug)]
struct Target {
    agency: &'static str,
    /// Its collection account (each agency has its own, so a statement belongs to one).
    account: &'static str,
    /// SePay transaction ids of its unmatched credits are `credit_base + 1` and `+ 2`.
    credit_base: u64,
    /// The receipt issued for case 2.
    receipt_id: String,
}

impl Target {
    fn new(agency: &'static str) -> Target {
        let (account, credit_base) = if agency == A { ("113366668888", 9100) } else { ("113366669999", 9200) };
        Target { agency, account, credit_base, receipt_id: uuid::Uuid::new_v4().to_string() }
    }

    /// Case 1: assessed, 3,000 owed. Case 2: paid, with a receipt. Case 3: paid, no receipt.
    /// Case 4: assessed, to cancel. Case 9: not assessed yet.
    fn case(&self, number: u32) -> String {
        format!("{}-240426-{number:04}", self.agency)
    }

    fn credit(&self, offset: u64) -> String {
        format!("sepay:{}", self.credit_base + offset)
    }
}

fn configure_input(t: &Target) -> Value {
    json!({ "input": {
        "code": t.agency, "name": format!("UBND {}", t.agency), "bankBin": "970415",
        "accountNumber": t.account, "accountName": "UBND PHUONG", "retainsFees": true,
        "counters": ["quay-1", "quay-2"], "level": "DISTRICT"
    }})
}

fn schedule_input(t: &Target, effective_from: &str) -> Value {
    json!({ "input": { "agencyCode": t.agency, "effectiveFrom": effective_from, "fees": [
        { "feeCode": "P-SAOY", "name": "Phí chứng thực bản sao", "kind": "PHI", "unitAmount": "1000", "retentionPercent": "90" },
        { "feeCode": "LP-TRICHLUC", "name": "Lệ phí trích lục hộ tịch", "kind": "LE_PHI", "unitAmount": "8000", "retentionPercent": "0" }
    ]}})
}

fn assess_input(case: &str, agency: &str, quantity: i32) -> Value {
    json!({ "input": {
        "caseCode": case, "agencyCode": agency, "procedureName": "Chứng thực bản sao từ bản chính",
        "payer": { "name": "VÕ ĐẶNG NGỌC GIÀ", "idNumber": "079201008870" },
        "lines": [{ "feeCode": "P-SAOY", "quantity": quantity }]
    }})
}

const CONFIGURE: &str = "mutation($input: ConfigureAgencyInput!) { configureAgency(input: $input) { code } }";
const PUBLISH: &str = "mutation($input: FeeScheduleInput!) { publishFeeSchedule(input: $input) { version } }";
const ASSESS: &str = "mutation($input: AssessFeesInput!) { assessFees(input: $input) { code } }";
const PAY: &str = "mutation($input: RecordPaymentInput!) { recordPayment(input: $input) { status } }";

/// Agencies A and B, each with its cases, a receipt, two unmatched credits, and quay-1 showing
/// case 4 (the last assessed there).
async fn set_up(app: &TestApp) -> [Target; 2] {
    let admin = app.admin();
    let mut targets = [Target::new(A), Target::new(B)];
    for t in &mut targets {
        app.graphql_ok(&admin, CONFIGURE, configure_input(t)).await;
        app.graphql_ok(&admin, PUBLISH, schedule_input(t, "2024-01-01")).await;
        let officer = app.officer(t.agency);
        for (number, quantity) in [(1, 3), (2, 1), (3, 1), (4, 1)] {
            app.graphql_ok(&officer, ASSESS, assess_input(&t.case(number), t.agency, quantity)).await;
        }
        for number in [2, 3] {
            let key = format!("setup-{}", t.case(number));
            let input = json!({ "input": { "caseCode": t.case(number), "amount": "1000", "channel": "CASH", "reference": key, "idempotencyKey": key } });
            app.graphql_ok(&officer, PAY, input).await;
        }
        let receipt = app
            .graphql_ok(
                &officer,
                "mutation($c: String!) { issueReceipt(caseCode: $c) { id } }",
                json!({ "c": t.case(2) }),
            )
            .await;
        t.receipt_id = receipt["issueReceipt"]["id"].as_str().unwrap().to_owned();
        for offset in [1, 2] {
            let body = json!({
                "id": t.credit_base + offset, "gateway": "VietinBank", "transactionDate": "2026-11-22 09:15:00",
                "accountNumber": t.account, "code": null, "content": "nham tai khoan", "transferType": "in",
                "transferAmount": 50000, "accumulated": 19077000, "subAccount": null,
                "referenceCode": format!("FT{}", t.credit_base + offset)
            });
            let response = app
                .client
                .post(format!("{}/webhooks/sepay", app.address))
                .header("Authorization", format!("Apikey {SEPAY_KEY}"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "[{}] the SePay credit was not taken", app.backend());
        }
    }
    targets
}

// --- the operations ---------------------------------------------------------------------------

impl Op {
    /// The schema's name of the operation (and what sets the row apart, if anything).
    fn label(self) -> &'static str {
        match self {
            Op::Me => "me",
            Op::Case => "case",
            Op::CaseHistory => "caseHistory",
            Op::CounterDisplay => "counterDisplay(quay-1)",
            Op::CounterDisplayOfQuay2 => "counterDisplay(quay-2)",
            Op::Agency => "agency",
            Op::FeeSchedules => "feeSchedules",
            Op::FeeScheduleInForce => "feeScheduleInForce",
            Op::UnmatchedCredits => "unmatchedCredits",
            Op::UnmatchedCreditsOfNoAgency => "unmatchedCredits(\"\")",
            Op::CreditsAwaitingRefund => "creditsAwaitingRefund",
            Op::DailyReconciliation => "dailyReconciliation",
            Op::TreasuryReport => "treasuryReport",
            Op::CashlessRate => "cashlessRate",
            Op::ReceiptUsage => "receiptUsage",
            Op::Projections => "projections",
            Op::AuditEvents => "auditEvents",
            Op::DailyDigests => "dailyDigests",
            Op::CaseStatusSubscription => "subscription caseStatus",
            Op::CounterDisplaySubscription => "subscription counterDisplay",
            Op::CounterDisplayFeed => "feed /live/counter-display",
            Op::ProjectionProgress => "subscription projectionProgress",
            Op::AssessFees => "assessFees",
            Op::IssueQr => "issueQr(quay-1)",
            Op::IssueQrAtQuay2 => "issueQr(quay-2)",
            Op::RecordPayment => "recordPayment",
            Op::CancelAssessment => "cancelAssessment",
            Op::IssueReceipt => "issueReceipt",
            Op::CancelReceipt => "cancelReceipt",
            Op::AssignCredit => "assignCredit",
            Op::MarkCreditForRefund => "markCreditForRefund",
            Op::CancelUnknownReceipt => "cancelReceipt(unknown id)",
            Op::AssignUnknownCredit => "assignCredit(unknown id)",
            Op::MarkUnknownCreditForRefund => "markCreditForRefund(unknown id)",
            Op::ImportBankStatement => "importBankStatement",
            Op::ReconcileDay => "reconcileDay",
            Op::RemitToTreasury => "remitToTreasury",
            Op::ConfigureAgency => "configureAgency",
            Op::PublishFeeSchedule => "publishFeeSchedule",
            Op::RebuildProjection => "rebuildProjection",
            Op::LeagueTable => "leagueTable",
            Op::Targets => "targets",
            Op::Agencies => "agencies",
            Op::SetTarget => "setTarget",
        }
    }

    fn kind(self) -> Kind {
        match self {
            Op::CaseStatusSubscription
            | Op::CounterDisplaySubscription
            | Op::CounterDisplayFeed
            | Op::ProjectionProgress => Kind::Subscription,
            Op::AssessFees
            | Op::IssueQr
            | Op::IssueQrAtQuay2
            | Op::RecordPayment
            | Op::CancelAssessment
            | Op::IssueReceipt
            | Op::CancelReceipt
            | Op::AssignCredit
            | Op::MarkCreditForRefund
            | Op::CancelUnknownReceipt
            | Op::AssignUnknownCredit
            | Op::MarkUnknownCreditForRefund
            | Op::ImportBankStatement
            | Op::ReconcileDay
            | Op::RemitToTreasury
            | Op::ConfigureAgency
            | Op::PublishFeeSchedule
            | Op::SetTarget
            | Op::RebuildProjection => Kind::Mutation,
            _ => Kind::Query,
        }
    }

    /// Whether the operation is about an agency (else its row says only allowed or not).
    fn about_an_agency(self) -> bool {
        !matches!(
            self,
            Op::Me
                | Op::Projections
                | Op::AuditEvents
                | Op::DailyDigests
                | Op::UnmatchedCreditsOfNoAgency
                | Op::ProjectionProgress
                | Op::CancelUnknownReceipt
                | Op::AssignUnknownCredit
                | Op::MarkUnknownCreditForRefund
                | Op::RebuildProjection
                | Op::Targets
                | Op::Agencies
                | Op::SetTarget
        )
    }

    /// Whether an allowed caller must get data somewhere in the row (else it is refused by a
    /// business rule on purpose: the remittance asks for money that is not payable, the ids do
    /// not exist).
    fn succeeds_somewhere(self) -> bool {
        !matches!(
            self,
            Op::RemitToTreasury | Op::CancelUnknownReceipt | Op::AssignUnknownCredit | Op::MarkUnknownCreditForRefund
        )
    }

    /// The GraphQL document and its variables, aimed at agency `t`.
    fn request(self, t: &Target) -> (&'static str, Value) {
        let agency = json!({ "agency": t.agency });
        let case = |number| json!({ "code": t.case(number) });
        match self {
            Op::Me => ("query { me { role agencyCode } }", json!({})),
            Op::Case => ("query($code: String!) { case(code: $code) { code status } }", case(1)),
            Op::CaseHistory => {
                ("query($code: String!) { caseHistory(code: $code) { state { status } events { type } } }", case(1))
            }
            Op::CounterDisplay => (
                "query($agency: String) { counterDisplay(counterId: \"quay-1\", agencyCode: $agency) { caseCode state } }",
                agency,
            ),
            Op::CounterDisplayOfQuay2 => (
                "query($agency: String) { counterDisplay(counterId: \"quay-2\", agencyCode: $agency) { caseCode state } }",
                agency,
            ),
            Op::Agency => ("query($agency: String!) { agency(code: $agency) { code accountNumber } }", agency),
            Op::FeeSchedules => ("query($agency: String!) { feeSchedules(agencyCode: $agency) { version } }", agency),
            Op::FeeScheduleInForce => {
                ("query($agency: String!) { feeScheduleInForce(agencyCode: $agency) { version } }", agency)
            }
            Op::UnmatchedCredits => {
                ("query($agency: String!) { unmatchedCredits(agencyCode: $agency) { id status } }", agency)
            }
            Op::UnmatchedCreditsOfNoAgency => ("query { unmatchedCredits(agencyCode: \"\") { id } }", json!({})),
            Op::CreditsAwaitingRefund => {
                ("query($agency: String!) { creditsAwaitingRefund(agencyCode: $agency) { id status } }", agency)
            }
            Op::DailyReconciliation => (
                "query($agency: String!) { dailyReconciliation(agencyCode: $agency, date: \"2024-04-26\") { balanced } }",
                agency,
            ),
            Op::TreasuryReport => (
                "query($agency: String!) { treasuryReport(agencyCode: $agency, from: \"2024-01-01\", to: \"2030-12-31\") { collected balanced } }",
                agency,
            ),
            Op::CashlessRate => {
                ("query($agency: String!) { cashlessRate(agencyCode: $agency, month: \"2024-04\") { rate } }", agency)
            }
            Op::ReceiptUsage => (
                "query($agency: String!) { receiptUsage(agencyCode: $agency, from: \"2024-01-01\", to: \"2030-12-31\") { used } }",
                agency,
            ),
            Op::Projections => ("query { projections { name lag } }", json!({})),
            Op::AuditEvents => ("query { auditEvents(first: 5) { endCursor hasMore events { type } } }", json!({})),
            Op::DailyDigests => ("query { dailyDigests { date digest } }", json!({})),
            Op::CaseStatusSubscription => {
                ("subscription($code: String!) { caseStatus(code: $code) { code status } }", case(1))
            }
            Op::CounterDisplaySubscription => (
                "subscription($agency: String) { counterDisplay(counterId: \"quay-1\", agencyCode: $agency) { caseCode state } }",
                agency,
            ),
            // Not a document: the feed's subscribe names the counter and the agency.
            Op::CounterDisplayFeed => ("", agency),
            Op::ProjectionProgress => {
                ("subscription { projectionProgress(name: \"treasury\") { name generation } }", json!({}))
            }
            Op::AssessFees => (ASSESS, assess_input(&t.case(9), t.agency, 1)),
            Op::IssueQr => {
                ("mutation($code: String!) { issueQr(caseCode: $code, counterId: \"quay-1\") { amount } }", case(1))
            }
            Op::IssueQrAtQuay2 => {
                ("mutation($code: String!) { issueQr(caseCode: $code, counterId: \"quay-2\") { amount } }", case(1))
            }
            Op::RecordPayment => (
                PAY,
                json!({ "input": { "caseCode": t.case(1), "amount": "1000", "channel": "POS", "reference": "POS-AUTHZ", "idempotencyKey": "authz-pay" } }),
            ),
            Op::CancelAssessment => (
                "mutation($code: String!) { cancelAssessment(caseCode: $code, reason: \"nhập sai\") { status } }",
                case(4),
            ),
            Op::IssueReceipt => ("mutation($code: String!) { issueReceipt(caseCode: $code) { number } }", case(3)),
            Op::CancelReceipt => (
                "mutation($id: ID!) { cancelReceipt(receiptId: $id, reason: \"sai tên người nộp\") { cancelled } }",
                json!({ "id": t.receipt_id }),
            ),
            Op::AssignCredit => (
                "mutation($credit: ID!, $code: String!) { assignCredit(creditId: $credit, caseCode: $code) { paid } }",
                json!({ "credit": t.credit(1), "code": t.case(1) }),
            ),
            Op::MarkCreditForRefund => (
                "mutation($credit: ID!) { markCreditForRefund(creditId: $credit, reason: \"chuyển nhầm\") { status } }",
                json!({ "credit": t.credit(2) }),
            ),
            Op::CancelUnknownReceipt => (
                "mutation($id: ID!) { cancelReceipt(receiptId: $id, reason: \"sai tên người nộp\") { cancelled } }",
                json!({ "id": uuid::Uuid::new_v4().to_string() }),
            ),
            Op::AssignUnknownCredit => {
                ("mutation($code: String!) { assignCredit(creditId: \"sepay:1\", caseCode: $code) { paid } }", case(1))
            }
            Op::MarkUnknownCreditForRefund => (
                "mutation { markCreditForRefund(creditId: \"sepay:1\", reason: \"chuyển nhầm\") { status } }",
                json!({}),
            ),
            Op::ImportBankStatement => {
                let csv = format!(
                    "account_number,booked_on,amount,direction,description,transaction_id\n\
                     {},2024-04-26,1000,credit,AUTHZ,FT-AUTHZ-{}\n",
                    t.account, t.agency
                );
                (
                    "mutation($input: StatementInput!) { importBankStatement(input: $input) { inserted } }",
                    json!({ "input": { "format": "CSV", "content": csv } }),
                )
            }
            Op::ReconcileDay => (
                "mutation($agency: String!) { reconcileDay(agencyCode: $agency, date: \"2024-04-26\") { balanced } }",
                agency,
            ),
            Op::RemitToTreasury => (
                "mutation($input: RemitInput!) { remitToTreasury(input: $input) { amount } }",
                json!({ "input": { "agencyCode": t.agency, "upTo": "2024-04-01", "voucherNumber": "GNT-AUTHZ", "amount": "1000" } }),
            ),
            // The configuration it already has: allowed, it appends nothing.
            Op::ConfigureAgency => (CONFIGURE, configure_input(t)),
            // A version for 2099: allowed, it changes no amount charged today.
            Op::PublishFeeSchedule => (PUBLISH, schedule_input(t, "2099-01-01")),
            Op::RebuildProjection => {
                ("mutation { rebuildProjection(name: \"cashless\") { name generation } }", json!({}))
            }
            Op::LeagueTable => (
                "query($agency: String!) { leagueTable(rootAgencyCode: $agency, month: \"2024-04\") { rows { agencyCode cases met rank } } }",
                agency,
            ),
            Op::Targets => ("query { targets { level effectiveFrom } }", json!({})),
            Op::Agencies => ("query { agencies { code level } }", json!({})),
            // The target it already has: allowed, it appends nothing.
            Op::SetTarget => (
                "mutation { setTarget(input: { level: COMMUNE, effectiveFrom: \"2024-01\", cashlessPercent: \"70\", onlinePercent: \"30\" }) { level } }",
                json!({}),
            ),
        }
    }
}

// --- calling the service ------------------------------------------------------------------------

/// Calls `op` with this `Authorization` value (over HTTP, or over WebSocket for a subscription)
/// and returns the response body (for a subscription, its first message).
async fn call(app: &TestApp, authorization: Option<&str>, op: Op, target: &Target) -> Value {
    let (document, variables) = op.request(target);
    if op == Op::CounterDisplayFeed {
        return first_feed_message(app, authorization, &variables["agency"]).await;
    }
    if op.kind() == Kind::Subscription {
        return first_message(app, authorization, document, variables).await;
    }
    let mut request =
        app.client.post(format!("{}/graphql", app.address)).json(&json!({ "query": document, "variables": variables }));
    if let Some(authorization) = authorization {
        request = request.header("Authorization", authorization);
    }
    request.send().await.unwrap().json().await.unwrap()
}

/// Subscribes over graphql-transport-ws, sending `authorization` (if any) in `connection_init`,
/// and returns the first `next` payload or the `error` as `{ "errors": … }`.
async fn first_message(app: &TestApp, authorization: Option<&str>, document: &str, variables: Value) -> Value {
    let url = format!("{}/graphql/ws", app.address.replacen("http", "ws", 1));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let payload = authorization.map_or_else(|| json!({}), |a| json!({ "authorization": a }));
    socket.send(Message::text(json!({ "type": "connection_init", "payload": payload }).to_string())).await.unwrap();
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": { "query": document, "variables": variables } });
    first_answer(&mut socket, Some(subscribe)).await
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The first `next` payload on `socket`, or its `error` as `{ "errors": … }` (a closed or silent
/// socket as an error of its own). `on_ack`: sent once the server acknowledged the connection.
async fn first_answer(socket: &mut Socket, on_ack: Option<Value>) -> Value {
    let exchange = async {
        while let Some(Ok(message)) = socket.next().await {
            let Message::Text(text) = message else { continue };
            let message: Value = serde_json::from_str(&text).unwrap();
            match message["type"].as_str() {
                Some("connection_ack") if on_ack.is_some() => {
                    let subscribe = on_ack.as_ref().map(Value::to_string).unwrap_or_default();
                    socket.send(Message::text(subscribe)).await.unwrap();
                }
                Some("next") => return message["payload"].clone(),
                Some("error") => return json!({ "errors": message["payload"] }),
                _ => {}
            }
        }
        json!({ "errors": [{ "message": "the socket closed", "extensions": { "code": "CLOSED" } }] })
    };
    let first = tokio::time::timeout(PATIENCE, exchange).await;
    first.unwrap_or_else(|_| json!({ "errors": [{ "message": "no message", "extensions": { "code": "NO_ANSWER" } }] }))
}

/// Subscribes to quay-1 of `agency` on the display feed, sending `authorization` (if any) in the
/// subscribe, and returns the first `next` payload or the `error` as `{ "errors": … }`.
async fn first_feed_message(app: &TestApp, authorization: Option<&str>, agency: &Value) -> Value {
    let url = format!("{}/live/counter-display", app.address.replacen("http", "ws", 1));
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut payload = json!({ "counterId": "quay-1", "agencyCode": agency });
    if let Some(authorization) = authorization {
        payload["authorization"] = json!(authorization);
    }
    socket.send(Message::text(json!({ "type": "subscribe", "payload": payload }).to_string())).await.unwrap();
    first_answer(&mut socket, None).await
}

/// The error code of a response, `None` for data.
fn error_code(body: &Value) -> Option<&str> {
    body.get("errors").map(|errors| errors[0]["extensions"]["code"].as_str().unwrap_or("NO CODE"))
}

fn token(app: &TestApp, column: &Column) -> String {
    app.token(column.role, column.scoped.then_some(A), column.counter)
}

// --- the matrix -------------------------------------------------------------------------------

#[tokio::test]
async fn every_token_may_do_what_the_matrix_says_in_its_own_agency_and_in_another() {
    for database in TestDatabase::each_backend().await {
        let app = spawn_app_with(database, |s| {
            s.providers = ProviderSecrets { sepay_api_key: Some(Secret::new(SEPAY_KEY)), ..ProviderSecrets::default() }
        })
        .await;
        let targets = set_up(&app).await;
        let tokens: Vec<String> = COLUMNS.iter().map(|c| token(&app, c)).collect();
        let mut mismatches = Vec::new();
        let mut observed = String::new();
        for &(op, row) in MATRIX {
            let name = op.label();
            assert!(op.about_an_agency() || !row.contains(&Own), "{name} is not about an agency: use All or No");
            let mut any_data = false;
            let mut cells = Vec::new();
            for ((column, token), may) in COLUMNS.iter().zip(&tokens).zip(row) {
                let sides: &[Target] = if op.about_an_agency() { &targets } else { &targets[..1] };
                let mut cell = Vec::new();
                for target in sides {
                    let allowed = match may {
                        All => true,
                        Own => target.agency == A,
                        No => false,
                    };
                    let body = call(&app, Some(&format!("Bearer {token}")), op, target).await;
                    let code = error_code(&body);
                    any_data |= code.is_none();
                    let (fits, mark) = match code {
                        None => (allowed, "Y".to_owned()),
                        Some("FORBIDDEN") => (!allowed, "N".to_owned()),
                        Some(c @ ("VALIDATION" | "NOT_FOUND" | "CONFLICT")) if op.kind() == Kind::Mutation => {
                            (allowed, c[..1].to_lowercase())
                        }
                        Some(_) => (false, "!".to_owned()),
                    };
                    cell.push(mark);
                    if !fits {
                        let expected = if allowed { "allowed" } else { "FORBIDDEN" };
                        mismatches.push(format!(
                            "{name} as {} in agency {}: expected {expected}, got {body}",
                            column.label, target.agency
                        ));
                    }
                }
                cells.push(cell.join("/"));
            }
            if op.succeeds_somewhere() && row.iter().any(|m| *m != No) && !any_data {
                mismatches.push(format!("{name}: no allowed caller got data; the row tests nothing"));
            }
            writeln!(observed, "{name:<32}{}", cells.iter().map(|c| format!("{c:<10}")).collect::<String>()).unwrap();
        }
        let header: String = COLUMNS.iter().map(|c| format!("{:<10}", &c.label[..c.label.len().min(9)])).collect();
        eprintln!(
            "[{}] observed (own/other; Y data, N FORBIDDEN, v/n/c VALIDATION/NOT_FOUND/CONFLICT, ! other):\n{:<32}{header}\n{observed}",
            app.backend(),
            "operation"
        );
        assert!(
            mismatches.is_empty(),
            "[{}] {} cells differ from the policy:\n{}",
            app.backend(),
            mismatches.len(),
            mismatches.join("\n")
        );
    }
}

// --- credentials that are not a valid token -------------------------------------------------------

/// The column allowed to do an operation in agency A (the token that would succeed), if any.
fn allowed_column(row: &[May; 8]) -> Option<&'static Column> {
    COLUMNS.iter().zip(row).find(|(_, may)| **may != No).map(|(column, _)| column)
}

fn request_for(column: &Column) -> TokenRequest {
    TokenRequest::new(
        column.role,
        column.scoped.then(|| AgencyCode::parse(A).unwrap()),
        column.counter.map(|c| CounterId::parse(c).unwrap()),
    )
}

/// Calls every operation with the `Authorization` values `bad` makes from the token that would
/// be allowed (the officer's where none is), expects UNAUTHENTICATED from each and nothing
/// appended. Then calls each with the genuine token, which must not be UNAUTHENTICATED (nor
/// FORBIDDEN where allowed): the refusal is about the credential, not the role. Agency A is
/// configured; it has no cases, which must not matter: no operation may look anything up for
/// an unauthenticated caller.
async fn every_operation_refuses(what: &str, bad: impl Fn(&TestApp, &Column, &str) -> Vec<Option<String>>) {
    for app in spawn_each_backend().await {
        app.configure_agency(A).await;
        let target = Target::new(A);
        let before = app.state.ledger.store().head().await.unwrap().event_count;
        let mut mismatches = Vec::new();
        for (op, row) in MATRIX {
            let column = allowed_column(row).unwrap_or(&COLUMNS[0]);
            let genuine = token(&app, column);
            for authorization in bad(&app, column, &genuine) {
                let body = call(&app, authorization.as_deref(), *op, &target).await;
                if error_code(&body) != Some("UNAUTHENTICATED") {
                    mismatches.push(format!("{} with {authorization:?}: {body}", op.label()));
                }
            }
        }
        let after = app.state.ledger.store().head().await.unwrap().event_count;
        assert_eq!(after, before, "[{}] a request with {what} appended events", app.backend());
        // Subscriptions to a case or counter that never existed send nothing: the matrix covers
        // genuine subscriptions.
        for (op, row) in MATRIX.iter().filter(|(op, _)| op.kind() != Kind::Subscription) {
            let column = allowed_column(row).unwrap_or(&COLUMNS[0]);
            let body = call(&app, Some(&format!("Bearer {}", token(&app, column))), *op, &target).await;
            let refused = match error_code(&body) {
                Some("UNAUTHENTICATED") => true,
                Some("FORBIDDEN") => allowed_column(row).is_some(),
                _ => false,
            };
            if refused {
                mismatches.push(format!("{} refused the genuine {} token: {body}", op.label(), column.label));
            }
        }
        assert!(
            mismatches.is_empty(),
            "[{}] with {what}, {} calls were not UNAUTHENTICATED:\n{}",
            app.backend(),
            mismatches.len(),
            mismatches.join("\n")
        );
    }
}

#[tokio::test]
async fn without_a_token_every_operation_is_unauthenticated() {
    every_operation_refuses("no token", |_, _, _| vec![None]).await;
}

#[tokio::test]
async fn a_forged_token_is_unauthenticated_everywhere() {
    every_operation_refuses("a forged token", |app, column, genuine| {
        // The same claims signed with another key.
        let other_key = TokenService::from_secret(&Secret::new("not the key of this server, but long enough")).unwrap();
        let other_key = other_key.issue(&request_for(column), Utc::now()).unwrap();
        // A display token whose claims were replaced by an admin's, keeping its signature.
        let display = app.token(Role::Display, Some(A), Some("quay-1"));
        let admin = app.admin();
        let part = |token: &str, i: usize| token.split('.').nth(i).unwrap().to_owned();
        let escalated = format!("{}.{}.{}", part(&display, 0), part(&admin, 1), part(&display, 2));
        // The genuine claims, unsigned (`alg: none`).
        let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", part(genuine, 1));
        // The genuine token with the first character of its signature changed.
        let signature = part(genuine, 2);
        let changed = if signature.starts_with('A') { "B" } else { "A" };
        let altered = format!("{}.{}.{changed}{}", part(genuine, 0), part(genuine, 1), &signature[1..]);
        [other_key, escalated, unsigned, altered].into_iter().map(|t| Some(format!("Bearer {t}"))).collect()
    })
    .await;
}

#[tokio::test]
async fn an_expired_token_is_unauthenticated_everywhere() {
    every_operation_refuses("an expired token", |app, column, _| {
        // Issued so that its usual lifetime (30 days, a year for a display) ended an hour ago,
        // well past the 30 seconds of leeway.
        let request = request_for(column);
        let issued_at = Utc::now() - request.ttl - chrono::Duration::hours(1);
        let expired = app.state.tokens.issue(&request, issued_at).unwrap();
        vec![Some(format!("Bearer {expired}"))]
    })
    .await;
}

#[tokio::test]
async fn a_malformed_authorization_is_unauthenticated_everywhere() {
    every_operation_refuses("a malformed authorization", |_, _, genuine| {
        vec![
            Some("Bearer not-a-token".to_owned()),
            Some("Bearer a.b.c".to_owned()),
            Some("Bearer".to_owned()),
            Some(format!("Basic {genuine}")),
            Some(format!("Bearer {genuine} {genuine}")),
        ]
    })
    .await;
}
