//! Typed settings, read once at start-up. Secrets are wrapped in [`Secret`] so that printing a
//! settings value (a log line, a panic message) never shows them.

use std::fmt;

/// A secret string: `Debug` and `Display` print `***`. Read it with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The default database: a SQLite file in the working directory, created on first start.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://feeledger.db";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// How long a payment QR stays valid (the Hà Nội guidance shows it for the counter visit).
pub const DEFAULT_QR_TTL_MINUTES: u32 = 15;
/// How often live subscribers look for events committed by other nodes when no notification
/// arrived (a lost notification only delays them this much).
pub const DEFAULT_LIVE_POLL_MS: u64 = 1_000;

/// The keys each payment intermediary signs its notifications with. A provider without its key
/// answers 503 and accepts nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderSecrets {
    /// `Authorization: Apikey <key>` (FEELEDGER_SEPAY_API_KEY).
    pub sepay_api_key: Option<Secret>,
    /// The HMAC-SHA256 variant (FEELEDGER_SEPAY_HMAC_SECRET).
    pub sepay_hmac_secret: Option<Secret>,
    /// FEELEDGER_CASSO_CHECKSUM_KEY.
    pub casso_checksum_key: Option<Secret>,
    /// FEELEDGER_PAYOS_CHECKSUM_KEY.
    pub payos_checksum_key: Option<Secret>,
    /// FEELEDGER_VNPAY_HASH_SECRET.
    pub vnpay_hash_secret: Option<Secret>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub database_url: String,
    pub listen: String,
    /// Signs bearer tokens. When absent, a random key is generated once and kept in the
    /// database, so every node and CLI command on the same database agrees on it.
    pub token_secret: Option<Secret>,
    pub qr_ttl_seconds: u32,
    pub live_poll_ms: u64,
    /// The address people use to reach the service, for links printed by the CLI.
    pub public_base_url: Option<String>,
    pub database_max_connections: u32,
    pub providers: ProviderSecrets,
    /// The share of cases to be paid without cash (Bắc Giang: 80%, then 100%).
    pub cashless_target_percent: feeledger_domain::money::Percent,
    /// Whether this process keeps the read models up to date (one node of several may suffice).
    pub run_projections: bool,
    /// Whether to apply the migrations on start; off for a node running as the application
    /// role, which may not change the schema (it then only checks the schema is current).
    pub migrate: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            database_url: DEFAULT_DATABASE_URL.to_owned(),
            listen: DEFAULT_LISTEN.to_owned(),
            token_secret: None,
            qr_ttl_seconds: DEFAULT_QR_TTL_MINUTES * 60,
            live_poll_ms: DEFAULT_LIVE_POLL_MS,
            public_base_url: None,
            database_max_connections: 16,
            providers: ProviderSecrets::default(),
            cashless_target_percent: feeledger_domain::money::Percent::from_decimal(rust_decimal::Decimal::from(80))
                .unwrap_or(feeledger_domain::money::Percent::ZERO),
            run_projections: true,
            migrate: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let settings = Settings { token_secret: Some(Secret::new("hunter2")), ..Settings::default() };
        assert!(!format!("{settings:?}").contains("hunter2"));
        assert_eq!(Secret::new("x").to_string(), "***");
    }
}
