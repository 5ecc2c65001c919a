//! The one boundary error of the API and its exhaustive mapping to machine-readable codes.
//! Internal detail is logged, never returned.
//!
//! `ApiError` deliberately does not implement `Display`: async-graphql converts any `Display`
//! error into a GraphQL error *without* a code, so a `?` on an `ApiError` would silently drop
//! `extensions.code`. Without `Display`, only the conversion below applies.

use async_graphql::ErrorExtensions;
use feeledger_domain::case_fees::CaseError;
use feeledger_domain::reconciliation::ResolveError;
use feeledger_infrastructure::ledger::LedgerError;
use feeledger_infrastructure::storage::StoreError;

#[derive(Debug, Clone)]
pub enum ApiError {
    Validation(String),
    NotFound(String),
    Conflict(String),
    Forbidden(String),
    Unauthenticated(String),
    Unavailable,
    Internal,
    /// Too many requests to a public field: try again after this many seconds.
    RateLimited(u64),
}

impl ApiError {
    pub fn message(&self) -> String {
        match self {
            ApiError::Validation(m)
            | ApiError::NotFound(m)
            | ApiError::Conflict(m)
            | ApiError::Forbidden(m)
            | ApiError::Unauthenticated(m) => m.clone(),
            ApiError::Unavailable => "the database is unavailable; try again shortly".into(),
            ApiError::Internal => "internal error (see the server log for this request id)".into(),
            ApiError::RateLimited(seconds) => format!("too many requests; try again in {seconds} s"),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Validation(_) => "VALIDATION",
            ApiError::NotFound(_) => "NOT_FOUND",
            ApiError::Conflict(_) => "CONFLICT",
            ApiError::Forbidden(_) => "FORBIDDEN",
            ApiError::Unauthenticated(_) => "UNAUTHENTICATED",
            ApiError::Unavailable => "UNAVAILABLE",
            ApiError::Internal => "INTERNAL",
            ApiError::RateLimited(_) => "RATE_LIMITED",
        }
    }

    pub fn validation(error: impl std::fmt::Display) -> Self {
        ApiError::Validation(error.to_string())
    }

    pub fn forbidden() -> Self {
        ApiError::Forbidden("your token does not allow this operation here".into())
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(error: ApiError) -> Self {
        let code = error.code();
        let retry_after = match error {
            ApiError::RateLimited(seconds) => Some(seconds),
            _ => None,
        };
        async_graphql::Error::new(error.message()).extend_with(|_, extensions| {
            extensions.set("code", code);
            if let Some(seconds) = retry_after {
                extensions.set("retryAfter", seconds);
            }
        })
    }
}

impl From<LedgerError> for ApiError {
    fn from(error: LedgerError) -> Self {
        match error {
            LedgerError::Rejected(rejected) => match rejected {
                CaseError::NotAssessed | CaseError::UnknownPayment(_) => ApiError::NotFound(rejected.to_string()),
                CaseError::AlreadyAssessed
                | CaseError::AlreadyCancelled
                | CaseError::PaymentsRecorded
                | CaseError::NothingOutstanding
                | CaseError::IdempotencyKeyReused(_)
                | CaseError::AlreadyReconciled { .. }
                | CaseError::NotPaidInFull
                | CaseError::ReceiptAlreadyIssued(_)
                | CaseError::NothingToReceipt(_) => ApiError::Conflict(rejected.to_string()),
                CaseError::UnknownReceipt(_) => ApiError::NotFound(rejected.to_string()),
                CaseError::InconsistentHistory(_) => {
                    tracing::error!(error = %rejected, "a case's history does not add up");
                    ApiError::Internal
                }
                CaseError::AgencyMismatch { .. }
                | CaseError::BadLineCount
                | CaseError::BadQuantity(_)
                | CaseError::DuplicateFeeLine(_)
                | CaseError::UnknownFeeCode(_)
                | CaseError::BadProcedureName
                | CaseError::AboveTransferLimit(_)
                | CaseError::BadExpiry
                | CaseError::BadIdempotencyKey
                | CaseError::MissingReason
                | CaseError::RefundTooLarge { .. }
                | CaseError::BadRefundReference
                | CaseError::Money(_)
                | CaseError::VietQr(_) => ApiError::Validation(rejected.to_string()),
            },
            LedgerError::AgencyRejected(e) => ApiError::validation(e),
            LedgerError::ScheduleRejected(e) => ApiError::validation(e),
            LedgerError::ResolveRejected(e @ ResolveError::AlreadyResolved(..)) => ApiError::Conflict(e.to_string()),
            LedgerError::ResolveRejected(e) => ApiError::validation(e),
            LedgerError::NoScheduleInForce { .. } | LedgerError::Invalid(_) => ApiError::validation(error),
            LedgerError::NotFound(_) => ApiError::NotFound(error.to_string()),
            LedgerError::Contended(_) | LedgerError::IdempotencyKeyReused(_) => ApiError::Conflict(error.to_string()),
            LedgerError::Store(store) => store.into(),
            LedgerError::ReceiptNumbers(_) => ApiError::Conflict(error.to_string()),
            LedgerError::Codec(_) => {
                tracing::error!(error = %error, "command failed inside the ledger");
                ApiError::Internal
            }
        }
    }
}

/// An unreachable database is UNAVAILABLE (HTTP 503); any other store failure is INTERNAL,
/// its details in the log only.
impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        if error.is_unavailable() {
            tracing::warn!(%error, "database unavailable");
            ApiError::Unavailable
        } else {
            tracing::error!(%error, "the store failed");
            ApiError::Internal
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
