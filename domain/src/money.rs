//! Money: Vietnamese đồng and percentages.
//!
//! VND has no minor unit (ISO 4217 exponent 0), so a [`Vnd`] is a whole number of đồng. It is
//! backed by `rust_decimal` at scale 0 and can never be negative, fractional or absurdly large.
//! Arithmetic is checked: an overflow or a negative result is an error, never a wrap.

use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The largest amount the ledger accepts anywhere: 999,999,999,999,999 đồng (15 digits).
/// It keeps every sum far inside `i64` and rejects nonsense input early.
pub const VND_MAX: i64 = 999_999_999_999_999;

/// A NAPAS 247 transfer (and so one VietQR payment) must be below 500,000,000 đồng.
pub const NAPAS_TRANSFER_LIMIT: Vnd = Vnd(Decimal::from_parts(500_000_000, 0, 0, false, 0));

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount {0:?} is not a whole, non-negative number of đồng (digits only)")]
    NotWholeDong(String),
    #[error("amount must be greater than zero")]
    NotPositive,
    #[error("amount exceeds the maximum of {VND_MAX} đồng")]
    TooLarge,
    #[error("amount arithmetic would go below zero")]
    Negative,
    #[error("percentage {0:?} must be a decimal between 0 and 100 with at most 2 decimal places")]
    BadPercent(String),
}

/// A whole, non-negative number of Vietnamese đồng.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Vnd(Decimal);

impl Vnd {
    pub const ZERO: Vnd = Vnd(Decimal::ZERO);

    /// Whole đồng from an integer; rejects negatives and amounts above [`VND_MAX`].
    pub fn new(dong: i64) -> Result<Self, MoneyError> {
        if dong < 0 {
            return Err(MoneyError::Negative);
        }
        if dong > VND_MAX {
            return Err(MoneyError::TooLarge);
        }
        Ok(Vnd(Decimal::from(dong)))
    }

    /// Parses the textual form used at every boundary: ASCII digits only, nothing else.
    /// `"3000"` is 3,000 đồng; `"-5"`, `"2000.5"`, `"3.000"`, `"1e3"` and `"abc"` are rejected.
    pub fn parse(text: &str) -> Result<Self, MoneyError> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MoneyError::NotWholeDong(text.to_owned()));
        }
        let digits = text.trim_start_matches('0');
        if digits.len() > 15 {
            return Err(MoneyError::TooLarge);
        }
        let dong: i64 = if digits.is_empty() {
            0
        } else {
            digits.parse().map_err(|_| MoneyError::NotWholeDong(text.to_owned()))?
        };
        Self::new(dong)
    }

    /// Like [`Vnd::parse`], and the amount must be above zero (payments, prices).
    pub fn parse_positive(text: &str) -> Result<Self, MoneyError> {
        Self::parse(text)?.require_positive()
    }

    /// Converts an exact decimal (e.g. read back from a database); it must be whole.
    pub fn from_decimal(amount: Decimal) -> Result<Self, MoneyError> {
        if amount.is_sign_negative() && !amount.is_zero() {
            return Err(MoneyError::Negative);
        }
        if amount.fract() != Decimal::ZERO {
            return Err(MoneyError::NotWholeDong(amount.to_string()));
        }
        if amount > Decimal::from(VND_MAX) {
            return Err(MoneyError::TooLarge);
        }
        Ok(Vnd(amount.trunc().normalize()))
    }

    pub fn require_positive(self) -> Result<Self, MoneyError> {
        if self.is_zero() { Err(MoneyError::NotPositive) } else { Ok(self) }
    }

    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    pub fn as_decimal(self) -> Decimal {
        self.0
    }

    /// The amount in whole đồng. Always fits: the constructors bound it by [`VND_MAX`].
    pub fn dong(self) -> i64 {
        // Scale is 0 and the value is within VND_MAX, so the mantissa is the amount.
        i64::try_from(self.0.mantissa()).unwrap_or(VND_MAX)
    }

    pub fn checked_add(self, other: Vnd) -> Result<Vnd, MoneyError> {
        Self::from_decimal(self.0.checked_add(other.0).ok_or(MoneyError::TooLarge)?)
    }

    pub fn checked_sub(self, other: Vnd) -> Result<Vnd, MoneyError> {
        if other > self {
            return Err(MoneyError::Negative);
        }
        Self::from_decimal(self.0 - other.0)
    }

    pub fn checked_mul(self, quantity: u32) -> Result<Vnd, MoneyError> {
        Self::from_decimal(self.0.checked_mul(Decimal::from(quantity)).ok_or(MoneyError::TooLarge)?)
    }

    /// `self − other` when positive, otherwise zero: what is still owed, or what was paid beyond.
    pub fn excess_over(self, other: Vnd) -> Vnd {
        if self > other { Vnd(self.0 - other.0) } else { Vnd::ZERO }
    }

    /// Sums amounts; an overflow is an error.
    pub fn sum<I: IntoIterator<Item = Vnd>>(amounts: I) -> Result<Vnd, MoneyError> {
        amounts.into_iter().try_fold(Vnd::ZERO, Vnd::checked_add)
    }

    /// `3000` → `"3.000"`: the Vietnamese thousands separator, for people to read.
    pub fn grouped(self) -> String {
        let digits = self.0.to_string();
        let mut out = String::with_capacity(digits.len() + digits.len() / 3);
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push('.');
            }
            out.push(ch);
        }
        out
    }
}

impl fmt::Display for Vnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for Vnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} VND", self.0)
    }
}

impl FromStr for Vnd {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Serialised as a string of digits (`"3000"`), so no JSON reader can turn it into a float.
impl Serialize for Vnd {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// Accepts a string of digits or a JSON integer; rejects floats, signs and fractions.
impl<'de> Deserialize<'de> for Vnd {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct VndVisitor;
        impl Visitor<'_> for VndVisitor {
            type Value = Vnd;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number of đồng as a string of digits or an integer")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Vnd, E> {
                Vnd::parse(v).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Vnd, E> {
                let dong = i64::try_from(v).map_err(|_| E::custom(MoneyError::TooLarge))?;
                Vnd::new(dong).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Vnd, E> {
                Vnd::new(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(VndVisitor)
    }
}

/// A percentage between 0 and 100 with at most two decimal places, e.g. a retention rate.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Percent(Decimal);

impl Percent {
    pub const ZERO: Percent = Percent(Decimal::ZERO);

    pub fn parse(text: &str) -> Result<Self, MoneyError> {
        let bad = || MoneyError::BadPercent(text.to_owned());
        let well_formed = !text.is_empty()
            && text.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && text.bytes().filter(|b| *b == b'.').count() <= 1
            && !text.starts_with('.')
            && !text.ends_with('.');
        if !well_formed {
            return Err(bad());
        }
        let value = Decimal::from_str(text).map_err(|_| bad())?;
        Self::from_decimal(value).map_err(|_| bad())
    }

    pub fn from_decimal(value: Decimal) -> Result<Self, MoneyError> {
        let value = value.normalize();
        if value.is_sign_negative() || value > Decimal::ONE_HUNDRED || value.scale() > 2 {
            return Err(MoneyError::BadPercent(value.to_string()));
        }
        Ok(Percent(value))
    }

    pub fn as_decimal(self) -> Decimal {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

impl Serialize for Percent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Percent::parse(&text).map_err(de::Error::custom)
    }
}

/// Collected money divided between the collecting agency and the state budget.
/// Invariant: `retained + to_budget == collected`, to the đồng.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    pub retained: Vnd,
    pub to_budget: Vnd,
}

impl Split {
    /// The one rounding rule of the ledger (see docs/adr/0002-money.md):
    /// `retained = round_half_away_from_zero(collected × rate / 100)` in whole đồng, and the
    /// state budget receives the remainder, so the two parts always add up to the whole.
    pub fn of(collected: Vnd, retention: Percent) -> Split {
        let exact = collected.0 * retention.0 / Decimal::ONE_HUNDRED;
        let rounded = exact.round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero);
        // Bounded by `collected` because the rate is at most 100%.
        let retained = Vnd(rounded.normalize());
        let to_budget = Vnd(collected.0 - retained.0);
        debug_assert_eq!(retained.0 + to_budget.0, collected.0);
        Split { retained, to_budget }
    }

    pub fn total(self) -> Vnd {
        Vnd(self.retained.0 + self.to_budget.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_dong_strings_and_integers_are_accepted() {
        assert_eq!(Vnd::parse("3000").map(Vnd::dong), Ok(3000));
        assert_eq!(Vnd::parse("0").map(Vnd::dong), Ok(0));
        assert_eq!(Vnd::parse("000120").map(Vnd::dong), Ok(120));
        assert_eq!(serde_json::from_str::<Vnd>("2000").map(Vnd::dong).ok(), Some(2000));
        assert_eq!(serde_json::from_str::<Vnd>("\"2000\"").map(Vnd::dong).ok(), Some(2000));
    }

    #[test]
    fn negative_fractional_zero_and_garbage_amounts_are_rejected() {
        for bad in ["-5", "2000.5", "abc", "", " 1", "1e3", "3.000", "+5", "1_000"] {
            assert!(Vnd::parse_positive(bad).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(Vnd::parse_positive("0"), Err(MoneyError::NotPositive));
        assert!(serde_json::from_str::<Vnd>("2000.0").is_err(), "floats are never money");
        assert!(serde_json::from_str::<Vnd>("-5").is_err());
        assert_eq!(Vnd::parse("1000000000000000"), Err(MoneyError::TooLarge));
    }

    #[test]
    fn amounts_serialise_as_strings_of_digits() {
        let json = serde_json::to_string(&Vnd::new(180_000).unwrap()).unwrap();
        assert_eq!(json, "\"180000\"");
    }

    #[test]
    fn arithmetic_is_checked() {
        let a = Vnd::new(3000).unwrap();
        let b = Vnd::new(2000).unwrap();
        assert_eq!(a.checked_sub(b).map(Vnd::dong), Ok(1000));
        assert_eq!(b.checked_sub(a), Err(MoneyError::Negative));
        assert_eq!(Vnd::new(VND_MAX).unwrap().checked_add(Vnd::new(1).unwrap()), Err(MoneyError::TooLarge));
        assert_eq!(b.excess_over(a), Vnd::ZERO);
        assert_eq!(a.excess_over(b).dong(), 1000);
        assert_eq!(a.checked_mul(3).map(Vnd::dong), Ok(9000));
    }

    #[test]
    fn grouped_uses_dots_between_thousands() {
        assert_eq!(Vnd::new(0).unwrap().grouped(), "0");
        assert_eq!(Vnd::new(999).unwrap().grouped(), "999");
        assert_eq!(Vnd::new(1000).unwrap().grouped(), "1.000");
        assert_eq!(Vnd::new(200_000).unwrap().grouped(), "200.000");
        assert_eq!(Vnd::new(1_234_567).unwrap().grouped(), "1.234.567");
    }

    #[test]
    fn percent_accepts_two_decimals_within_zero_to_hundred() {
        assert!(Percent::parse("90").is_ok());
        assert!(Percent::parse("12.5").is_ok());
        assert!(Percent::parse("0").is_ok());
        assert!(Percent::parse("100").is_ok());
        for bad in ["100.01", "-1", "12.345", "abc", "", ".5", "5.", "1e2"] {
            assert!(Percent::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn split_rounds_half_away_from_zero_and_gives_the_remainder_to_the_budget() {
        let pct = |t| Percent::parse(t).unwrap();
        let vnd = |d| Vnd::new(d).unwrap();
        // 90% of 3,001 = 2,700.9 → 2,701 retained, 300 to the budget.
        assert_eq!(Split::of(vnd(3001), pct("90")), Split { retained: vnd(2701), to_budget: vnd(300) });
        // 50% of 1 = 0.5 → rounds away from zero: 1 retained, 0 to the budget.
        assert_eq!(Split::of(vnd(1), pct("50")), Split { retained: vnd(1), to_budget: vnd(0) });
        // Lệ phí: nothing retained.
        assert_eq!(Split::of(vnd(200_000), Percent::ZERO), Split { retained: vnd(0), to_budget: vnd(200_000) });
        assert_eq!(Split::of(vnd(7), pct("100")), Split { retained: vnd(7), to_budget: vnd(0) });
    }

    proptest::proptest! {
        #[test]
        fn split_parts_always_sum_to_the_whole(dong in 0i64..=VND_MAX, basis_points in 0u32..=10_000) {
            let collected = Vnd::new(dong).unwrap();
            let rate = Percent::from_decimal(Decimal::new(i64::from(basis_points), 2)).unwrap();
            let split = Split::of(collected, rate);
            proptest::prop_assert_eq!(split.retained.checked_add(split.to_budget).unwrap(), collected);
            proptest::prop_assert!(split.retained <= collected);
        }

        #[test]
        fn parse_then_display_is_identity(dong in 0i64..=VND_MAX) {
            let amount = Vnd::new(dong).unwrap();
            proptest::prop_assert_eq!(Vnd::parse(&amount.to_string()).unwrap(), amount);
        }
    }
}
