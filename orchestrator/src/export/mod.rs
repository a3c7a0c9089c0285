//! Exports of what the nights found, for other systems to read:
//! [`kcidb`] writes the nights as a KCIDB v5 document (checkouts, builds,
//! tests, issues and incidents). Read-only over the [`crate::store`]; knows
//! nothing of the command line.

use chrono::{DateTime, Duration, NaiveDate, Utc};

pub mod kcidb;

/// Reads a "since" time: RFC 3339 (`2026-12-01T06:00:00Z`), a date
/// (`2026-12-01`, midnight UTC) or a time back from `now` (`7d`, `12h`,
/// `30m`, `2w`). The error says what was wrong, without the flag's name.
pub fn parse_since(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty time".into());
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d")
        && let Some(dt) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(dt.and_utc());
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if !num.is_empty() && !unit.is_empty() {
        let n: i64 = num
            .parse()
            .map_err(|_| format!("`{t}`: number too large"))?;
        let back = match unit {
            "m" | "min" => Duration::try_minutes(n),
            "h" => Duration::try_hours(n),
            "d" => Duration::try_days(n),
            "w" => Duration::try_weeks(n),
            _ => return Err(format!("`{t}`: unknown unit `{unit}` (m, h, d or w)")),
        };
        return back
            .and_then(|b| now.checked_sub_signed(b))
            .ok_or_else(|| format!("`{t}`: too far back"));
    }
    Err(format!(
        "`{t}` is not a time: not RFC 3339, a date (YYYY-MM-DD) or a span back (7d)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-10T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn since_reads_rfc3339_dates_and_spans() {
        let at = |s: &str| parse_since(s, now()).unwrap().to_rfc3339();
        assert_eq!(at("2026-12-01T06:30:00+01:00"), "2026-12-01T05:30:00+00:00");
        assert_eq!(at("2026-12-01"), "2026-12-01T00:00:00+00:00");
        assert_eq!(at("7d"), "2026-12-03T12:00:00+00:00");
        assert_eq!(at("12h"), "2026-12-10T00:00:00+00:00");
        assert_eq!(at("30m"), "2026-12-10T11:30:00+00:00");
        assert_eq!(at("1w"), "2026-12-03T12:00:00+00:00");
    }

    #[test]
    fn since_refuses_what_it_cannot_read() {
        for bad in [
            "",
            "yesterday",
            "7y",
            "2026-13-01",
            "d",
            "99999999999999999999d",
        ] {
            assert!(parse_since(bad, now()).is_err(), "{bad}");
        }
        assert!(
            parse_since("7y", now())
                .unwrap_err()
                .contains("unknown unit")
        );
    }
}
