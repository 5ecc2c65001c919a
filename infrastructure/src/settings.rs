//! Typed settings, read once at start-up. Secrets are wrapped in [`Secret`] so that printing a
//! settings value (a log line, a panic message) never shows them.
//!
//! Each setting comes from, first to last: the command line, its `FEELEDGER_*` environment
//! variable, the optional `feeledger.toml` ([`FileSettings`], see `feeledger.example.toml`),
//! the built-in default. [`Settings::validate`] refuses a bad value at start-up, naming it.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A secret string: `Debug` and `Display` print `***`. Read it with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
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
/// A notification still unfinished this long after it arrived was interrupted (a request
/// takes milliseconds); the inbox recovery finishes it.
pub const DEFAULT_INBOX_RECOVERY_AFTER_SECONDS: u64 = 60;
/// Requests a minute one client address may make to the public payment page's data: a page
/// that polls every 5 s uses 12, so a citizen never meets the limit, while walking through
/// case codes goes at one a second at most.
pub const DEFAULT_PUBLIC_RATE_PER_CLIENT_PER_MINUTE: u32 = 60;
/// Requests a minute to the public payment page's data from all clients together.
pub const DEFAULT_PUBLIC_RATE_GLOBAL_PER_MINUTE: u32 = 6_000;

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
    /// When an unfinished inbox row counts as interrupted (see `api::webhooks`).
    pub inbox_recovery_after_seconds: u64,
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
    /// Days off besides weekends and the built-in Vietnamese public holidays (treasury
    /// deadlines move past them): a year beyond the built-in table, a day the government moves.
    pub non_working_days: Vec<chrono::NaiveDate>,
    /// PostgreSQL read replica(s) for reads that tolerate one (FEELEDGER_READ_DATABASE_URL).
    pub read_database_url: Option<String>,
    /// The public payment page's rate limits (requests a minute): per client address, and all
    /// clients together.
    pub public_rate_per_client_per_minute: u32,
    pub public_rate_global_per_minute: u32,
    /// Whether the client address is the last one of `X-Forwarded-For` (behind our own reverse
    /// proxy) rather than the TCP peer.
    pub trust_forwarded_for: bool,
    /// The most an acquirer may deduct from a day's card payments when it settles them, in
    /// thousandths (30 = 3%): the batch matching's only tolerance (issue 15; cash has none).
    pub card_fee_max_per_mille: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            database_url: DEFAULT_DATABASE_URL.to_owned(),
            listen: DEFAULT_LISTEN.to_owned(),
            token_secret: None,
            qr_ttl_seconds: DEFAULT_QR_TTL_MINUTES * 60,
            live_poll_ms: DEFAULT_LIVE_POLL_MS,
            inbox_recovery_after_seconds: DEFAULT_INBOX_RECOVERY_AFTER_SECONDS,
            public_base_url: None,
            database_max_connections: 16,
            providers: ProviderSecrets::default(),
            cashless_target_percent: feeledger_domain::money::Percent::from_decimal(rust_decimal::Decimal::from(80))
                .unwrap_or(feeledger_domain::money::Percent::ZERO),
            run_projections: true,
            migrate: true,
            non_working_days: Vec::new(),
            read_database_url: None,
            public_rate_per_client_per_minute: DEFAULT_PUBLIC_RATE_PER_CLIENT_PER_MINUTE,
            public_rate_global_per_minute: DEFAULT_PUBLIC_RATE_GLOBAL_PER_MINUTE,
            trust_forwarded_for: false,
            card_fee_max_per_mille: feeledger_domain::batch_matching::BatchRules::default().card_fee_max_per_mille,
        }
    }
}

/// The file read when no `--config` / `FEELEDGER_CONFIG` is given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "feeledger.toml";

/// `feeledger.toml`: every key optional; unknown keys are errors (a typo must not be ignored).
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub database_url: Option<String>,
    pub listen: Option<String>,
    pub token_secret: Option<Secret>,
    pub qr_ttl_minutes: Option<u32>,
    pub live_poll_ms: Option<u64>,
    pub inbox_recovery_after_seconds: Option<u64>,
    pub public_base_url: Option<String>,
    pub database_max_connections: Option<u32>,
    pub cashless_target_percent: Option<String>,
    pub run_projections: Option<bool>,
    pub migrate: Option<bool>,
    pub log_format: Option<String>,
    /// `["2028-01-25", …]`: see [`Settings::non_working_days`].
    pub non_working_days: Option<Vec<chrono::NaiveDate>>,
    pub read_database_url: Option<String>,
    pub public_rate_per_client_per_minute: Option<u32>,
    pub public_rate_global_per_minute: Option<u32>,
    pub trust_forwarded_for: Option<bool>,
    /// See [`Settings::card_fee_max_per_mille`].
    pub card_fee_max_per_mille: Option<i64>,
    #[serde(default)]
    pub providers: FileProviders,
}

/// `[providers]` in `feeledger.toml`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileProviders {
    pub sepay_api_key: Option<Secret>,
    pub sepay_hmac_secret: Option<Secret>,
    pub casso_checksum_key: Option<Secret>,
    pub payos_checksum_key: Option<Secret>,
    pub vnpay_hash_secret: Option<Secret>,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read the settings file {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("the settings file {path} is invalid: {reason}")]
    BadFile { path: PathBuf, reason: String },
    #[error("invalid setting {name} ({env} or `{key}` in feeledger.toml): {reason}")]
    BadValue { name: &'static str, env: &'static str, key: &'static str, reason: String },
}

impl FileSettings {
    /// Reads `explicit` (which must exist), or else `feeledger.toml` in the working directory if
    /// there is one, or else nothing.
    pub fn load(explicit: Option<&Path>) -> Result<FileSettings, SettingsError> {
        let path = match explicit {
            Some(path) => path.to_path_buf(),
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => PathBuf::from(DEFAULT_CONFIG_FILE),
            None => return Ok(FileSettings::default()),
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| SettingsError::Unreadable { path: path.clone(), reason: e.to_string() })?;
        FileSettings::parse(&text).map_err(|reason| SettingsError::BadFile { path, reason })
    }

    pub fn parse(text: &str) -> Result<FileSettings, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim().to_owned())
    }

    /// The file's provider keys under the environment's.
    pub fn providers_under(&self, env: ProviderSecrets) -> ProviderSecrets {
        let file = &self.providers;
        ProviderSecrets {
            sepay_api_key: env.sepay_api_key.or_else(|| file.sepay_api_key.clone()),
            sepay_hmac_secret: env.sepay_hmac_secret.or_else(|| file.sepay_hmac_secret.clone()),
            casso_checksum_key: env.casso_checksum_key.or_else(|| file.casso_checksum_key.clone()),
            payos_checksum_key: env.payos_checksum_key.or_else(|| file.payos_checksum_key.clone()),
            vnpay_hash_secret: env.vnpay_hash_secret.or_else(|| file.vnpay_hash_secret.clone()),
        }
    }
}

impl Settings {
    /// Refuses values the service cannot run with, naming the setting.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let bad = |name, env, key, reason: String| Err(SettingsError::BadValue { name, env, key, reason });
        if !(self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://")
            || self.database_url.starts_with("sqlite:"))
        {
            return bad(
                "database URL",
                "FEELEDGER_DATABASE_URL",
                "database_url",
                "use postgres://… or sqlite://…".into(),
            );
        }
        if let Some(read_url) = &self.read_database_url
            && !(read_url.starts_with("postgres://") || read_url.starts_with("postgresql://"))
        {
            return bad(
                "read replica URL",
                "FEELEDGER_READ_DATABASE_URL",
                "read_database_url",
                "use postgres://… (a read replica needs PostgreSQL)".into(),
            );
        }
        if let Err(e) = self.listen.parse::<std::net::SocketAddr>() {
            return bad(
                "listen address",
                "FEELEDGER_LISTEN",
                "listen",
                format!("{:?}: {e} (e.g. 0.0.0.0:8080)", self.listen),
            );
        }
        if let Some(secret) = &self.token_secret
            && secret.expose().len() < 32
        {
            return bad("token secret", "FEELEDGER_TOKEN_SECRET", "token_secret", "at least 32 characters".into());
        }
        if !(0..=1000).contains(&self.card_fee_max_per_mille) {
            return bad(
                "card settlement fee tolerance",
                "FEELEDGER_CARD_FEE_MAX_PER_MILLE",
                "card_fee_max_per_mille",
                "0 to 1000 thousandths of the day's card total".into(),
            );
        }
        if !(60..=24 * 3600).contains(&self.qr_ttl_seconds) {
            return bad("QR lifetime", "FEELEDGER_QR_TTL_MINUTES", "qr_ttl_minutes", "1 to 1440 minutes".into());
        }
        if !(10..=60_000).contains(&self.live_poll_ms) {
            return bad("live poll interval", "FEELEDGER_LIVE_POLL_MS", "live_poll_ms", "10 to 60000 ms".into());
        }
        if !(1..=86_400).contains(&self.inbox_recovery_after_seconds) {
            return bad(
                "inbox recovery delay",
                "FEELEDGER_INBOX_RECOVERY_AFTER_SECONDS",
                "inbox_recovery_after_seconds",
                "1 to 86400 seconds".into(),
            );
        }
        if !(1..=1_000_000).contains(&self.public_rate_per_client_per_minute) {
            return bad(
                "public rate per client",
                "FEELEDGER_PUBLIC_RATE_PER_CLIENT_PER_MINUTE",
                "public_rate_per_client_per_minute",
                "1 to 1000000 requests a minute".into(),
            );
        }
        if !(1..=10_000_000).contains(&self.public_rate_global_per_minute) {
            return bad(
                "public rate, all clients",
                "FEELEDGER_PUBLIC_RATE_GLOBAL_PER_MINUTE",
                "public_rate_global_per_minute",
                "1 to 10000000 requests a minute".into(),
            );
        }
        if let Some(url) = &self.public_base_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return bad(
                "public base URL",
                "FEELEDGER_PUBLIC_BASE_URL",
                "public_base_url",
                "an absolute http(s):// URL, e.g. https://dichvucong.example.gov.vn".into(),
            );
        }
        if !(1..=1_000).contains(&self.database_max_connections) {
            return bad(
                "database pool size",
                "FEELEDGER_DATABASE_MAX_CONNECTIONS",
                "database_max_connections",
                "1 to 1000".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_settings_file_reads_every_key_and_refuses_unknown_ones() {
        let file = FileSettings::parse(
            "database_url = \"postgres://db/feeledger\"\nlisten = \"0.0.0.0:8080\"\nqr_ttl_minutes = 10\n\
             run_projections = false\n[providers]\nsepay_api_key = \"k\"\n",
        )
        .unwrap();
        assert_eq!(file.database_url.as_deref(), Some("postgres://db/feeledger"));
        assert_eq!(file.qr_ttl_minutes, Some(10));
        assert_eq!(file.run_projections, Some(false));
        assert_eq!(file.providers.sepay_api_key, Some(Secret::new("k")));
        assert!(!format!("{file:?}").contains("\"k\""), "secrets do not print");

        let typo = FileSettings::parse("listn = \"0.0.0.0:8080\"").unwrap_err();
        assert!(typo.contains("listn"), "{typo}");
        let wrong_type = FileSettings::parse("qr_ttl_minutes = \"ten\"").unwrap_err();
        assert!(wrong_type.contains("qr_ttl_minutes"), "{wrong_type}");
    }

    #[test]
    fn the_example_settings_file_is_valid() {
        let example = include_str!("../../deploy/feeledger.example.toml");
        let file = FileSettings::parse(example).unwrap();
        assert_eq!(file.listen.as_deref(), Some(DEFAULT_LISTEN));
        assert_eq!(file.qr_ttl_minutes, Some(DEFAULT_QR_TTL_MINUTES));
        assert_eq!(file.card_fee_max_per_mille, Some(Settings::default().card_fee_max_per_mille));
    }

    #[test]
    fn extra_days_off_are_read_as_dates() {
        let file = FileSettings::parse("non_working_days = [\"2028-01-25\"]").unwrap();
        assert_eq!(file.non_working_days, Some(vec![chrono::NaiveDate::from_ymd_opt(2028, 1, 25).unwrap()]));
        let bad = FileSettings::parse("non_working_days = [\"2028-02-30\"]").unwrap_err();
        assert!(bad.contains("non_working_days"), "{bad}");
    }

    #[test]
    fn bad_values_are_refused_naming_the_setting() {
        assert!(Settings::default().validate().is_ok());
        let cases = [
            (Settings { listen: "8080".into(), ..Settings::default() }, "FEELEDGER_LISTEN"),
            (Settings { database_url: "mysql://x".into(), ..Settings::default() }, "FEELEDGER_DATABASE_URL"),
            (Settings { token_secret: Some(Secret::new("short")), ..Settings::default() }, "FEELEDGER_TOKEN_SECRET"),
            (Settings { qr_ttl_seconds: 0, ..Settings::default() }, "FEELEDGER_QR_TTL_MINUTES"),
            (Settings { card_fee_max_per_mille: 1001, ..Settings::default() }, "FEELEDGER_CARD_FEE_MAX_PER_MILLE"),
            (Settings { database_max_connections: 0, ..Settings::default() }, "FEELEDGER_DATABASE_MAX_CONNECTIONS"),
            (
                Settings { read_database_url: Some("sqlite://replica.db".into()), ..Settings::default() },
                "FEELEDGER_READ_DATABASE_URL",
            ),
        ];
        for (settings, named) in cases {
            let error = settings.validate().unwrap_err().to_string();
            assert!(error.contains(named), "{error}");
            assert!(!error.contains("short"), "a secret's value is never echoed: {error}");
        }
    }

    #[test]
    fn secrets_never_print() {
        let settings = Settings { token_secret: Some(Secret::new("hunter2")), ..Settings::default() };
        assert!(!format!("{settings:?}").contains("hunter2"));
        assert_eq!(Secret::new("x").to_string(), "***");
    }
}
