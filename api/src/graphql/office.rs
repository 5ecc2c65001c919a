//! What the office pages follow live: money arriving in an agency's account or at its counters.

use async_graphql::{Context, SimpleObject, Subscription};
use feeledger_domain::codes::{AgencyCode, CaseCode};
use feeledger_infrastructure::codec::{BANK_CREDIT_STREAM_PREFIX, CASE_STREAM_PREFIX};
use futures::Stream;

use super::errors::ApiError;
use super::scalars::DateTimeScalar;
use super::{api, principal};
use crate::auth::{Action, Scope};
use crate::live_routes::{Notice, Topic};

/// A notice that money arrived: a payment recorded on one of the agency's cases, or a bank
/// credit observed on (or left unmatched for) its account. The page re-reads its reports.
#[derive(SimpleObject, Debug, Clone)]
#[graphql(name = "MoneyArrival")]
pub struct MoneyArrivalView {
    agency_code: String,
    /// `PaymentReceived`, `BankCreditObserved`, `CreditMatched` or `CreditUnmatched`; first of
    /// all `Subscribed` (the subscription now follows the log: re-read once, and nothing that
    /// commits from here on is missed), and `Lagged` when notices were missed.
    event_type: String,
    position: String,
    recorded_at: DateTimeScalar,
}

const WATCHED: [&str; 4] = ["PaymentReceived", "BankCreditObserved", "CreditMatched", "CreditUnmatched"];

/// The agency an event is about, when it is one the finance page follows.
pub(crate) fn concerns(event: &feeledger_infrastructure::storage::RecordedEvent) -> Option<AgencyCode> {
    if !WATCHED.contains(&event.event_type.as_str()) {
        return None;
    }
    if let Some(code) = event.stream_id.strip_prefix(CASE_STREAM_PREFIX) {
        return CaseCode::parse(code).ok().map(|c| c.agency());
    }
    if event.stream_id.starts_with(BANK_CREDIT_STREAM_PREFIX) {
        return event.payload.get("agency_code").and_then(|v| v.as_str()).and_then(|c| AgencyCode::parse(c).ok());
    }
    None
}

#[derive(Default, Debug)]
pub struct OfficeSubscriptions;

#[Subscription]
impl OfficeSubscriptions {
    /// A notice each time money arrives for `agencyCode` (finance staff, auditors and admins who
    /// may read the agency).
    async fn money_arrived(
        &self,
        ctx: &Context<'_>,
        agency_code: String,
    ) -> Result<impl Stream<Item = MoneyArrivalView> + use<>, ApiError> {
        let principal = principal(ctx)?;
        let agency = AgencyCode::parse(agency_code.trim()).map_err(ApiError::validation)?;
        if !principal.may(Action::ReadReports, Scope::Agency(&agency)) {
            return Err(ApiError::forbidden());
        }
        let events = api(ctx).live.follow([Topic::MoneyFor(agency.to_string())]);
        let subscribed = MoneyArrivalView {
            agency_code: agency.to_string(),
            event_type: "Subscribed".into(),
            position: String::new(),
            recorded_at: DateTimeScalar(api(ctx).clock.now()),
        };
        let arrivals = futures::stream::unfold((events, agency), |(mut events, agency)| async move {
            let view = match events.recv().await? {
                Notice::Event(event) => MoneyArrivalView {
                    agency_code: agency.to_string(),
                    event_type: event.event_type.clone(),
                    position: event.position.to_string(),
                    recorded_at: DateTimeScalar(event.recorded_at),
                },
                // Missed some: say so with a notice, so the page re-reads.
                Notice::Lagged => MoneyArrivalView {
                    agency_code: agency.to_string(),
                    event_type: "Lagged".into(),
                    position: String::new(),
                    recorded_at: DateTimeScalar(chrono::Utc::now()),
                },
            };
            Some((view, (events, agency)))
        });
        Ok(futures::StreamExt::chain(futures::stream::once(async move { subscribed }), arrivals))
    }
}
