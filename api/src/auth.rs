//! Bearer tokens: who is calling, in which role, for which agency and counter.
//!
//! Tokens are HS256 JWTs. The signing key comes from `FEELEDGER_TOKEN_SECRET` when set;
//! otherwise a random key is generated once and kept in the database, so `feeledger tokens
//! issue` and every server node on the same database agree on it without configuration.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use feeledger_domain::codes::{AgencyCode, CounterId};
use feeledger_infrastructure::settings::Secret;
use feeledger_infrastructure::storage::{Storage, StoreError};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};

const SIGNING_KEY_SETTING: &str = "token_signing_key";
const ISSUER: &str = "feeledger";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Counter officer: assesses fees, issues QR codes, records payments, in one agency.
    Officer,
    /// A citizen-facing screen: reads one counter's display.
    Display,
    /// Finance staff: reconcile, remit, read reports; of one agency, or all when unscoped.
    Finance,
    /// Reads and replays everything of one agency, or all when unscoped; changes nothing.
    Auditor,
    /// Configures agencies and fee schedules, rebuilds projections.
    Admin,
    /// Province oversight: reads the aggregates (league tables, rates, charts) of the subtree of
    /// agencies under its root agency; never a case, a payer or a payment.
    Oversight,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Officer => "officer",
            Role::Display => "display",
            Role::Finance => "finance",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
            Role::Oversight => "oversight",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Claims {
    sub: String,
    role: Role,
    #[serde(skip_serializing_if = "Option::is_none")]
    agency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    counter: Option<String>,
    iss: String,
    iat: i64,
    exp: i64,
    jti: String,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub subject: String,
    pub role: Role,
    pub agency: Option<AgencyCode>,
    pub counter: Option<CounterId>,
}

/// What a caller wants to do. Who may do what lives in [`Principal::may`], and only there:
/// resolvers and routes ask it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read an agency's cases (status, lines, history).
    ReadCases,
    /// Read an agency's configuration (its name, counters, account): also its display screens.
    ReadAgency,
    /// List every agency the caller may read.
    ListAgencies,
    /// Work an agency's counters: assess, issue QR codes, take payments.
    OperateCounter,
    /// Print a case's slip for the citizen.
    PrintSlip,
    /// Read an agency's money: treasury, reconciliation, receipts, vouchers, downloads, charts.
    ReadReports,
    /// Record facts about an agency's money: reconcile, remit, import statements.
    ManageMoney,
    /// Issue or cancel a receipt.
    IssueReceipts,
    /// Look at the credits that wait for a person.
    ReadCreditQueue,
    /// Assign a waiting credit to a case or mark it for refund.
    WorkCreditQueue,
    /// Read aggregates (league tables) of a subtree of agencies.
    ReadAggregates,
    /// See how the service runs: projections, daily digests.
    ReadOperations,
    /// Read the whole event log, personal data included.
    ReadEventLog,
    /// Configure agencies, fee schedules and targets; rebuild projections.
    Administer,
}

/// Where an action applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// One agency.
    Agency(&'a AgencyCode),
    /// Whatever is not tied to an agency (a credit whose agency could not be told, the whole
    /// log, the service itself): only tokens not scoped to an agency.
    Unattributed,
    /// The role may do this somewhere; the agency is checked once it is known (asked first so
    /// that a caller who may not act at all learns nothing from a lookup).
    Somewhere,
}

impl Principal {
    /// Whether this caller may do `action` in `scope`: the service's whole authorisation policy
    /// (proved role by role in tests/api/authz.rs).
    pub fn may(&self, action: Action, scope: Scope<'_>) -> bool {
        use Action as A;
        use Role as R;
        let role = self.role;
        let unscoped = self.agency.is_none();
        let roles = |allowed: &[Role]| allowed.contains(&role);
        let within = |agency: &AgencyCode| match scope {
            Scope::Agency(_) => self.can_read_agency(agency),
            _ => true,
        };
        let in_scope = match scope {
            Scope::Agency(agency) => within(agency),
            Scope::Unattributed => unscoped,
            Scope::Somewhere => true,
        };
        match action {
            A::ReadCases | A::ReadAgency if role == R::Display => match scope {
                Scope::Agency(agency) => action == A::ReadAgency && self.agency.as_ref() == Some(agency),
                _ => false,
            },
            A::ReadCases | A::ReadAgency => roles(&[R::Admin, R::Finance, R::Auditor, R::Officer]) && in_scope,
            A::ListAgencies => roles(&[R::Admin, R::Finance, R::Auditor]),
            A::OperateCounter => match scope {
                Scope::Agency(agency) => self.can_operate_in(agency),
                _ => role == R::Officer,
            },
            A::PrintSlip => roles(&[R::Officer, R::Finance, R::Admin]) && in_scope,
            A::ReadReports => roles(&[R::Finance, R::Auditor, R::Admin]) && in_scope,
            A::ManageMoney => role == R::Finance && in_scope,
            A::IssueReceipts => match scope {
                Scope::Agency(agency) => self.can_operate_in(agency) || (role == R::Finance && within(agency)),
                _ => roles(&[R::Officer, R::Finance]) && in_scope,
            },
            A::ReadCreditQueue => match scope {
                Scope::Unattributed => unscoped && roles(&[R::Finance, R::Auditor, R::Admin]),
                _ => roles(&[R::Admin, R::Finance, R::Auditor, R::Officer]) && in_scope,
            },
            A::WorkCreditQueue => match scope {
                Scope::Unattributed => unscoped && role == R::Finance,
                _ => roles(&[R::Officer, R::Finance]) && in_scope,
            },
            A::ReadAggregates => roles(&[R::Admin, R::Finance, R::Auditor, R::Oversight]),
            A::ReadOperations => roles(&[R::Admin, R::Auditor, R::Finance]),
            A::ReadEventLog => role == R::Auditor && unscoped,
            A::Administer => role == R::Admin,
        }
    }

    /// Whether this caller may read an agency's cases and reports (by its token's scope).
    pub fn can_read_agency(&self, agency: &AgencyCode) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Finance | Role::Auditor => self.agency.as_ref().is_none_or(|own| own == agency),
            Role::Officer => self.agency.as_ref() == Some(agency),
            Role::Display | Role::Oversight => false,
        }
    }

    /// Whether this caller works the counters of an agency (assess, issue QR, take payment).
    pub fn can_operate_in(&self, agency: &AgencyCode) -> bool {
        self.role == Role::Officer && self.agency.as_ref() == Some(agency)
    }

    /// Whether this caller may watch a counter's display.
    pub fn can_watch_counter(&self, agency: &AgencyCode, counter: &CounterId) -> bool {
        match self.role {
            Role::Display => self.agency.as_ref() == Some(agency) && self.counter.as_ref() == Some(counter),
            Role::Officer => self.agency.as_ref() == Some(agency),
            Role::Admin | Role::Auditor | Role::Finance => self.can_read_agency(agency),
            Role::Oversight => false,
        }
    }
}

/// Why a token was refused, in words that help its holder without telling a forger anything:
/// never the library's own message, which lists the roles a token may claim.
fn token_problem(kind: &jsonwebtoken::errors::ErrorKind) -> &'static str {
    use jsonwebtoken::errors::ErrorKind;
    match kind {
        ErrorKind::ExpiredSignature => "it has expired; ask for a new one",
        ErrorKind::ImmatureSignature => "it is not valid yet",
        ErrorKind::InvalidSignature => "its signature does not match (it was not issued by this service)",
        ErrorKind::InvalidIssuer => "it was not issued by this service",
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            "it is signed with an algorithm this service does not accept"
        }
        _ => "it is malformed",
    }
}

/// What the request's `Authorization` header established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    Anonymous,
    Authenticated(Principal),
    /// A token was sent but is forged, expired or malformed.
    Invalid(String),
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("role {role} requires {what}")]
    MissingScope { role: Role, what: &'static str },
    #[error("role {role} must not be scoped to {what}")]
    UnexpectedScope { role: Role, what: &'static str },
    #[error("the token is invalid: {0}")]
    InvalidToken(String),
    #[error("token signing failed: {0}")]
    Signing(String),
    #[error("FEELEDGER_TOKEN_SECRET must be at least 32 characters")]
    WeakSecret,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What to put in a new token.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub role: Role,
    pub agency: Option<AgencyCode>,
    pub counter: Option<CounterId>,
    pub subject: Option<String>,
    pub ttl: Duration,
}

impl TokenRequest {
    pub fn new(role: Role, agency: Option<AgencyCode>, counter: Option<CounterId>) -> Self {
        let ttl = match role {
            // A display sits on a counter for months; people's tokens last a working month.
            Role::Display => Duration::days(365),
            _ => Duration::days(30),
        };
        TokenRequest { role, agency, counter, subject: None, ttl }
    }
}

/// Cheap to clone: every request's state and every WebSocket (10,000 screens) holds one.
#[derive(Clone)]
pub struct TokenService {
    keys: Arc<TokenKeys>,
}

struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl fmt::Debug for TokenService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenService(***)")
    }
}

impl TokenService {
    pub fn from_secret(secret: &Secret) -> Result<Self, AuthError> {
        if secret.expose().len() < 32 {
            return Err(AuthError::WeakSecret);
        }
        Ok(TokenService {
            keys: Arc::new(TokenKeys {
                encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
                decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            }),
        })
    }

    /// The configured secret, or the key kept in the database (generated on first use).
    pub async fn load(configured: Option<&Secret>, store: &Storage) -> Result<Self, AuthError> {
        if let Some(secret) = configured {
            return Self::from_secret(secret);
        }
        let mut fresh = [0u8; 32];
        rand::rng().fill_bytes(&mut fresh);
        let stored = store.setting_or_insert(SIGNING_KEY_SETTING, &hex::encode(fresh)).await?;
        Self::from_secret(&Secret::new(stored))
    }

    pub fn issue(&self, request: &TokenRequest, now: DateTime<Utc>) -> Result<String, AuthError> {
        let role = request.role;
        match role {
            Role::Officer if request.agency.is_none() => {
                return Err(AuthError::MissingScope { role, what: "--agency" });
            }
            Role::Display if request.agency.is_none() || request.counter.is_none() => {
                return Err(AuthError::MissingScope { role, what: "--agency and --counter" });
            }
            Role::Admin if request.agency.is_some() || request.counter.is_some() => {
                return Err(AuthError::UnexpectedScope { role, what: "an agency or counter" });
            }
            Role::Oversight if request.agency.is_none() || request.counter.is_some() => {
                return Err(AuthError::MissingScope {
                    role,
                    what: "--agency (the root of its subtree) and no --counter",
                });
            }
            Role::Finance | Role::Auditor if request.counter.is_some() => {
                return Err(AuthError::UnexpectedScope { role, what: "a counter" });
            }
            _ => {}
        }
        let subject = request.subject.clone().unwrap_or_else(|| {
            let scope =
                [request.agency.as_ref().map(|a| a.to_string()), request.counter.as_ref().map(|c| c.to_string())];
            let scope: Vec<String> = scope.into_iter().flatten().collect();
            if scope.is_empty() { role.to_string() } else { format!("{role}@{}", scope.join("/")) }
        });
        let claims = Claims {
            sub: subject,
            role,
            agency: request.agency.as_ref().map(ToString::to_string),
            counter: request.counter.as_ref().map(ToString::to_string),
            iss: ISSUER.to_owned(),
            iat: now.timestamp(),
            exp: (now + request.ttl).timestamp(),
            jti: uuid::Uuid::new_v4().to_string(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.keys.encoding)
            .map_err(|e| AuthError::Signing(e.to_string()))
    }

    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.leeway = 30;
        let data = jsonwebtoken::decode::<Claims>(token, &self.keys.decoding, &validation)
            .map_err(|e| AuthError::InvalidToken(token_problem(e.kind()).into()))?;
        let claims = data.claims;
        let bad_scope = |_| AuthError::InvalidToken("its agency or counter is malformed".into());
        let agency = claims.agency.as_deref().map(AgencyCode::parse).transpose().map_err(bad_scope)?;
        let counter = claims.counter.as_deref().map(CounterId::parse).transpose().map_err(bad_scope)?;
        Ok(Principal { subject: claims.sub, role: claims.role, agency, counter })
    }

    /// Reads `Authorization: Bearer <token>` (or the bare token from a WebSocket payload).
    pub fn authenticate(&self, authorization: Option<&str>) -> Authentication {
        let Some(value) = authorization.map(str::trim).filter(|v| !v.is_empty()) else {
            return Authentication::Anonymous;
        };
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            Some(_) => return Authentication::Invalid("only Bearer tokens are accepted".into()),
            None => value,
        };
        match self.verify(token) {
            Ok(principal) => Authentication::Authenticated(principal),
            Err(e) => Authentication::Invalid(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn service() -> TokenService {
        TokenService::from_secret(&Secret::new("x".repeat(32))).unwrap()
    }

    fn agency(code: &str) -> Option<AgencyCode> {
        Some(AgencyCode::parse(code).unwrap())
    }

    #[test]
    fn an_issued_token_verifies_to_its_role_and_scope() {
        let tokens = service();
        let request = TokenRequest::new(Role::Officer, agency("H34.22.6"), Some(CounterId::parse("quay-1").unwrap()));
        let token = tokens.issue(&request, Utc::now()).unwrap();
        let principal = tokens.verify(&token).unwrap();
        assert_eq!(principal.role, Role::Officer);
        assert_eq!(principal.agency, agency("H34.22.6"));
        assert_eq!(principal.subject, "officer@H34.22.6/quay-1");
    }

    #[test]
    fn expired_and_forged_tokens_are_rejected() {
        let tokens = service();
        let request = TokenRequest::new(Role::Admin, None, None);
        let old = tokens.issue(&request, Utc::now() - Duration::days(31)).unwrap();
        assert!(matches!(tokens.authenticate(Some(&format!("Bearer {old}"))), Authentication::Invalid(_)));
        let other = TokenService::from_secret(&Secret::new("y".repeat(32))).unwrap();
        let forged = other.issue(&request, Utc::now()).unwrap();
        assert!(matches!(tokens.authenticate(Some(&format!("Bearer {forged}"))), Authentication::Invalid(_)));
        assert_eq!(tokens.authenticate(None), Authentication::Anonymous);
    }

    #[test]
    fn roles_must_carry_the_scope_they_need() {
        let tokens = service();
        assert!(tokens.issue(&TokenRequest::new(Role::Officer, None, None), Utc::now()).is_err());
        assert!(tokens.issue(&TokenRequest::new(Role::Display, agency("H34.22.6"), None), Utc::now()).is_err());
        assert!(tokens.issue(&TokenRequest::new(Role::Admin, agency("H34.22.6"), None), Utc::now()).is_err());
        assert!(tokens.issue(&TokenRequest::new(Role::Finance, None, None), Utc::now()).is_ok());
    }

    #[test]
    fn an_officer_reads_only_their_agency_and_unscoped_finance_reads_all() {
        let officer = Principal { subject: "o".into(), role: Role::Officer, agency: agency("H34.22.6"), counter: None };
        let other = AgencyCode::parse("H34.22.7").unwrap();
        assert!(officer.can_read_agency(&AgencyCode::parse("H34.22.6").unwrap()));
        assert!(!officer.can_read_agency(&other));
        let finance = Principal { subject: "f".into(), role: Role::Finance, agency: None, counter: None };
        assert!(finance.can_read_agency(&other));
        assert!(!finance.can_operate_in(&other));
    }

    #[test]
    fn a_refused_token_is_explained_without_naming_the_roles() {
        let tokens = service();
        let claims = |role: &str| {
            let now = Utc::now().timestamp();
            json!({ "sub": "x", "role": role, "iss": ISSUER, "iat": now, "exp": now + 60, "jti": "j" })
        };
        let unknown_role = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims("superuser"),
            &EncodingKey::from_secret("x".repeat(32).as_bytes()),
        )
        .unwrap();
        for token in [unknown_role.as_str(), "not.a.token", "abc"] {
            let Authentication::Invalid(message) = tokens.authenticate(Some(&format!("Bearer {token}"))) else {
                panic!("{token} must be refused");
            };
            for role in ["officer", "display", "finance", "auditor", "admin", "oversight"] {
                assert!(!message.contains(role), "{message:?} names the role {role}");
            }
        }
    }

    #[test]
    fn a_short_secret_is_refused() {
        assert!(matches!(TokenService::from_secret(&Secret::new("short")), Err(AuthError::WeakSecret)));
    }
}
