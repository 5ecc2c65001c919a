//! Vietnam's civil time: UTC+7 all year (no daylight saving), which decides the calendar day
//! of a payment for reconciliation and reports.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, TimeZone, Utc};

/// UTC+07:00 (Asia/Ho_Chi_Minh has had no DST since 1975). The one definition of Vietnam time
/// in the code base; the screens' `Asia/Ho_Chi_Minh` is the same offset.
pub const OFFSET: FixedOffset = match FixedOffset::east_opt(7 * 3600) {
    Some(offset) => offset,
    None => panic!("UTC+7 is a valid offset"),
};

/// [`OFFSET`], for call sites that want a function.
pub fn offset() -> FixedOffset {
    OFFSET
}

/// The Vietnamese calendar day of an instant.
pub fn date_of(instant: DateTime<Utc>) -> NaiveDate {
    instant.with_timezone(&offset()).date_naive()
}

/// The first instant of a Vietnamese calendar day, in UTC.
pub fn start_of(day: NaiveDate) -> DateTime<Utc> {
    let local = day.and_time(NaiveTime::MIN);
    offset()
        .from_local_datetime(&local)
        .single()
        .map_or_else(|| Utc.from_utc_datetime(&local), |t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payment_at_2am_vietnam_time_belongs_to_that_vietnamese_day() {
        let instant: DateTime<Utc> = "2024-04-25T19:30:00Z".parse().unwrap(); // 02:30 on the 26th in Hà Nội
        assert_eq!(date_of(instant), NaiveDate::from_ymd_opt(2024, 4, 26).unwrap());
        assert_eq!(start_of(date_of(instant)), "2024-04-25T17:00:00Z".parse::<DateTime<Utc>>().unwrap());
    }
}
