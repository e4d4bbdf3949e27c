//! Wall-clock helpers in one place: RFC 3339 UTC timestamps for records and `YYYY/MM/DD` archive
//! folders. Everything else takes instants as parameters, so translators stay pure.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Now, as RFC 3339 UTC with seconds precision (`2026-11-23T10:00:00Z`).
pub fn now_rfc3339() -> String {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0)
        .unwrap_or(now)
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

/// `YYYY/MM/DD` of an RFC 3339 timestamp (today's when it does not parse).
pub fn date_path(rfc3339: &str) -> String {
    let at = OffsetDateTime::parse(rfc3339, &Rfc3339).unwrap_or_else(|_| OffsetDateTime::now_utc());
    let d = at.to_offset(time::UtcOffset::UTC).date();
    format!("{:04}/{:02}/{:02}", d.year(), u8::from(d.month()), d.day())
}

#[cfg(test)]
mod tests {
    #[test]
    fn date_path_is_utc() {
        assert_eq!(super::date_path("2026-11-23T23:30:00-05:00"), "2026/11/24");
        assert!(super::now_rfc3339().ends_with('Z'));
    }
}
