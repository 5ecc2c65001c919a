//! The contract's scalars: `Vnd` (whole đồng as a string of digits; input also accepts an
//! integer, never a float), `Date` (a Vietnamese calendar day, `YYYY-MM-DD`) and `DateTime`
//! (RFC 3339). async-graphql's own `Decimal` would accept JSON floats, so it is not used.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use feeledger_domain::money::Vnd;

/// Whole Vietnamese đồng, e.g. `"3000"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VndScalar(pub Vnd);

#[Scalar(name = "Vnd")]
impl ScalarType for VndScalar {
    fn parse(value: Value) -> InputValueResult<Self> {
        let amount = match &value {
            Value::String(text) => Vnd::parse(text),
            Value::Number(number) => match number.as_i64() {
                Some(dong) => Vnd::new(dong),
                None => return Err(InputValueError::custom("Vnd must be a whole number of đồng, never a float")),
            },
            _ => return Err(InputValueError::expected_type(value)),
        };
        amount.map(VndScalar).map_err(InputValueError::custom)
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_string())
    }
}

impl From<Vnd> for VndScalar {
    fn from(amount: Vnd) -> Self {
        VndScalar(amount)
    }
}

/// A calendar day in Vietnam, `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateScalar(pub NaiveDate);

#[Scalar(name = "Date")]
impl ScalarType for DateScalar {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(text) => NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(DateScalar)
                .map_err(|_| InputValueError::custom(format!("{text:?} is not a date as YYYY-MM-DD"))),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}

/// An instant, RFC 3339 (`2024-04-26T09:15:00+07:00` or `...Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTimeScalar(pub DateTime<Utc>);

#[Scalar(name = "DateTime")]
impl ScalarType for DateTimeScalar {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(text) => DateTime::parse_from_rfc3339(text)
                .map(|t| DateTimeScalar(t.with_timezone(&Utc)))
                .map_err(|_| InputValueError::custom(format!("{text:?} is not an RFC 3339 date-time"))),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_rfc3339_opts(SecondsFormat::Micros, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vnd_accepts_digit_strings_and_integers_only() {
        assert_eq!(VndScalar::parse(Value::String("3000".into())).ok().map(|v| v.0.dong()), Some(3000));
        assert_eq!(VndScalar::parse(Value::from(2000)).ok().map(|v| v.0.dong()), Some(2000));
        assert!(VndScalar::parse(Value::from(2000.5)).is_err());
        assert!(VndScalar::parse(Value::from(2000.0)).is_err());
        assert!(VndScalar::parse(Value::String("-5".into())).is_err());
        assert!(VndScalar::parse(Value::Boolean(true)).is_err());
        assert_eq!(VndScalar(Vnd::new(180_000).unwrap()).to_value(), Value::String("180000".into()));
    }
}
