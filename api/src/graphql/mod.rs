//! The GraphQL API, composed per capability. Names follow the public contract of
//! docs/API.md (DESIGN §5): keep them stable, extend rather than rename.

mod agencies;
mod audit;
mod cases;
pub(crate) mod counter;
mod credits;
pub mod errors;
mod finance;
pub mod limits;
pub(crate) mod office;
pub(crate) mod oversight;
mod public;
pub mod receipt_reports;
pub mod scalars;

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextRequest, NextResolve, NextSubscribe, ResolveInfo,
};
use async_graphql::{Context, MergedObject, MergedSubscription, Response, Schema, ServerError, ServerResult};
use chrono::{DateTime, Utc};
use feeledger_infrastructure::ledger::Ledger;
use feeledger_infrastructure::payment_intake::PaymentIntake;
use feeledger_infrastructure::statement_store::StatementStore;
use feeledger_infrastructure::storage::EventMetadata;
use feeledger_projections::reconciliation::Reconciliations;
use feeledger_projections::runner::Runner;
use feeledger_projections::treasury::TreasuryReports;
use futures::StreamExt;
use futures::stream::BoxStream;

use crate::auth::{Authentication, Principal};
use crate::clock::Clock;
use errors::ApiError;

pub use agencies::{AgencyMutations, AgencyQueries};
pub use audit::AuditQueries;
pub use cases::{CaseMutations, CaseQueries, mask_personal_data};
pub use counter::{CounterMutations, CounterQueries, CounterSubscriptions};
pub use credits::{CreditMutations, CreditQueries};
pub use finance::{FinanceMutations, FinanceQueries, FinanceSubscriptions};
pub use office::OfficeSubscriptions;
pub use oversight::{OversightMutations, OversightQueries};
pub use public::{PublicMutations, PublicQueries, PublicSubscriptions};
pub use receipt_reports::ReceiptReportQueries;

#[derive(MergedObject, Default, Debug)]
pub struct QueryRoot(
    CaseQueries,
    CounterQueries,
    CreditQueries,
    FinanceQueries,
    AgencyQueries,
    AuditQueries,
    PublicQueries,
    ReceiptReportQueries,
    OversightQueries,
);

#[derive(MergedObject, Default, Debug)]
pub struct MutationRoot(
    CaseMutations,
    CounterMutations,
    CreditMutations,
    FinanceMutations,
    AgencyMutations,
    PublicMutations,
    OversightMutations,
);

#[derive(MergedSubscription, Default, Debug)]
pub struct SubscriptionRoot(CounterSubscriptions, FinanceSubscriptions, PublicSubscriptions, OfficeSubscriptions);

pub type FeeledgerSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Everything resolvers need, passed as schema data (never a global).
#[derive(Debug, Clone)]
pub struct ApiContext {
    pub ledger: Ledger,
    pub intake: PaymentIntake,
    pub runner: Runner,
    pub treasury: TreasuryReports,
    pub reconciliations: Reconciliations,
    pub statements: StatementStore,
    pub cashless_target_percent: feeledger_domain::money::Percent,
    /// New events as they commit, routed to the subscriptions they concern.
    pub live: crate::live_routes::LiveRoutes,
    pub clock: Clock,
    pub qr_ttl_seconds: u32,
    /// The public payment page's rate limits.
    pub public_limit: crate::rate_limit::PublicRateLimit,
    /// Where citizens reach the service (the case slip's QR links to `{it}/pay/{code}`).
    pub public_base_url: Option<String>,
    /// Long statement imports' progress, for `statementImportProgress`.
    pub imports: tokio::sync::broadcast::Sender<finance::ImportProgress>,
}

pub fn build_schema(context: ApiContext) -> FeeledgerSchema {
    Schema::build(QueryRoot::default(), MutationRoot::default(), SubscriptionRoot::default())
        .data(context)
        .extension(ErrorCodes)
        .extension(limits::DocumentLimits)
        .limit_depth(16)
        .limit_complexity(2_000)
        .limit_directives(8)
        .finish()
}

/// The request id of the HTTP request, for event metadata and logs.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

pub(crate) fn api<'a>(ctx: &'a Context<'_>) -> &'a ApiContext {
    // Always inserted by build_schema.
    ctx.data_unchecked::<ApiContext>()
}

pub(crate) fn ledger<'a>(ctx: &'a Context<'_>) -> &'a Ledger {
    &api(ctx).ledger
}

pub(crate) fn now(ctx: &Context<'_>) -> DateTime<Utc> {
    api(ctx).clock.now()
}

/// The caller, or UNAUTHENTICATED.
pub(crate) fn principal<'a>(ctx: &'a Context<'_>) -> Result<&'a Principal, ApiError> {
    match ctx.data_opt::<Authentication>() {
        Some(Authentication::Authenticated(principal)) => Ok(principal),
        Some(Authentication::Invalid(reason)) => Err(ApiError::Unauthenticated(reason.clone())),
        Some(Authentication::Anonymous) | None => {
            Err(ApiError::Unauthenticated("a bearer token is required (Authorization: Bearer <token>)".into()))
        }
    }
}

/// Who is acting, recorded with every event the request appends.
pub(crate) fn metadata(ctx: &Context<'_>, principal: &Principal) -> EventMetadata {
    EventMetadata {
        actor: Some(principal.subject.clone()),
        role: Some(principal.role.to_string()),
        request_id: ctx.data_opt::<RequestId>().map(|r| r.0.clone()),
        ..EventMetadata::default()
    }
}

/// Gives every error a machine-readable `extensions.code`. Resolver errors carry theirs; the
/// ones without a code come from async-graphql rejecting the request itself (syntax, unknown
/// fields, a `Vnd` that is a float) and are VALIDATION errors.
struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodesExtension)
    }
}

struct ErrorCodesExtension;

#[async_graphql::async_trait::async_trait]
impl Extension for ErrorCodesExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        with_codes(next.run(ctx).await)
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        let open = crate::metrics::OpenSubscription::open();
        next.run(ctx, stream)
            .map(move |response| {
                let _counted_while_open = &open;
                with_codes(response)
            })
            .boxed()
    }

    /// Times each top-level mutation (a command) for the latency histogram.
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<async_graphql::Value>> {
        if info.parent_type != "MutationRoot" {
            return next.run(ctx, info).await;
        }
        let command = info.name.to_owned();
        let started = std::time::Instant::now();
        let result = next.run(ctx, info).await;
        crate::metrics::command(&command, result.is_ok(), started.elapsed());
        result
    }
}

fn with_codes(mut response: Response) -> Response {
    for error in &mut response.errors {
        finish_error(error);
    }
    response
}

/// Every error gets a code, and a message short enough never to echo a large document back.
fn finish_error(error: &mut ServerError) {
    error.message = limits::short(&error.message);
    let has_code = error.extensions.as_ref().is_some_and(|e| e.get("code").is_some());
    if !has_code {
        error.extensions.get_or_insert_with(Default::default).set("code", "VALIDATION");
    }
}
