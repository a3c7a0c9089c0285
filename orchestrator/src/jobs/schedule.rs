//! A job's `schedule:` (a five-field cron expression) and `timezone:` (an
//! IANA name, UTC when absent): parsing with field-by-field messages, and the
//! next run.
//!
//! Times in a daylight-saving gap follow croner's rule (Vixie cron's): a
//! fixed-time job (`30 2 * * *`) whose wall-clock time does not exist that day
//! runs at the first valid minute after the gap, the same calendar day
//! (03:00 CEST on Berlin's spring-forward day); in the autumn overlap it runs
//! once, at the first of the two 02:30s. Wildcard/step jobs skip times in the
//! gap.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// A parsed schedule: the cron expression and the time zone it is read in.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The expression as written.
    pub expr: String,
    /// The time zone its fields are read in.
    pub tz: Tz,
    cron: Cron,
}

/// `(name, min, max)` of the five cron fields.
const FIELDS: [(&str, u32, u32); 5] = [
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
];

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const NICKNAMES: [&str; 7] = [
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
];

/// Checks one value of a field (a number or, for month and weekday, a name).
fn check_value(field: usize, v: &str) -> Result<(), String> {
    let (name, min, max) = FIELDS[field];
    let v = v.split('#').next().unwrap_or(v);
    // `L` (last) and `W` (nearest weekday) suffixes of a number, or `L` alone.
    let stripped = v.trim_end_matches(['L', 'W', 'l', 'w']);
    let v = if stripped.is_empty() || stripped.parse::<u64>().is_ok() {
        stripped
    } else {
        v
    };
    if v.is_empty() {
        return Ok(());
    }
    if let Ok(n) = v.parse::<u64>() {
        if n < min as u64 || n > max as u64 {
            return Err(format!("{name} {n} out of range {min}–{max}"));
        }
        return Ok(());
    }
    let upper = v.to_ascii_uppercase();
    let names: &[&str] = match field {
        3 => &MONTHS,
        4 => &DAYS,
        _ => &[],
    };
    if names.contains(&upper.as_str()) {
        return Ok(());
    }
    if names.is_empty() {
        Err(format!("{name} `{v}` is not a number {min}–{max}"))
    } else {
        Err(format!(
            "{name} `{v}` is not a number {min}–{max} or a name ({})",
            names.join(", ")
        ))
    }
}

/// Field-by-field check with messages that name the field and its range.
fn check_fields(expr: &str) -> Result<(), String> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "`{expr}`: {} fields; a cron expression has 5: minute hour day-of-month month day-of-week (e.g. `0 2 * * *`: 02:00 every day)",
            fields.len()
        ));
    }
    for (i, f) in fields.iter().enumerate() {
        for part in f.split(',') {
            let (range, step) = match part.split_once('/') {
                Some((r, s)) => (r, Some(s)),
                None => (part, None),
            };
            if let Some(s) = step {
                match s.parse::<u32>() {
                    Ok(n) if n > 0 => {}
                    _ => {
                        return Err(format!(
                            "`{expr}`: {} step `{s}` must be a positive number",
                            FIELDS[i].0
                        ));
                    }
                }
            }
            if range == "*" || range == "?" {
                continue;
            }
            let mut ends = range.splitn(2, '-');
            for end in ends.by_ref() {
                check_value(i, end).map_err(|m| format!("`{expr}`: {m}"))?;
            }
        }
    }
    Ok(())
}

impl Schedule {
    /// Parses `expr` read in `tz` (UTC when `None`). The error is the message
    /// for the `schedule` field (the caller reports a bad time zone itself,
    /// see [`parse_tz`]).
    pub fn parse(expr: &str, tz: Tz) -> Result<Schedule, String> {
        let t = expr.trim();
        if !NICKNAMES.contains(&t.to_ascii_lowercase().as_str()) {
            check_fields(t)?;
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(t)
            .map_err(|e| format!("`{t}`: {e}"))?;
        Ok(Schedule {
            expr: t.to_string(),
            tz,
            cron,
        })
    }

    /// The first run strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Tz>> {
        self.cron
            .find_next_occurrence(&after.with_timezone(&self.tz), false)
            .ok()
    }

    /// The next run from now.
    pub fn next(&self) -> Option<DateTime<Tz>> {
        self.next_after(Utc::now())
    }
}

/// Parses an IANA time zone name; the error suggests the closest name.
pub fn parse_tz(name: &str) -> Result<Tz, String> {
    if let Ok(tz) = Tz::from_str(name) {
        return Ok(tz);
    }
    let names = chrono_tz::TZ_VARIANTS.iter().map(|t| t.name());
    match super::suggest(name, names) {
        Some(s) => Err(format!(
            "`{name}` is not an IANA time zone; did you mean `{s}`?"
        )),
        None => Err(format!(
            "`{name}` is not an IANA time zone (use e.g. `UTC` or `Europe/Berlin`)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn hour_out_of_range() {
        let e = Schedule::parse("0 25 * * *", Tz::UTC).unwrap_err();
        assert_eq!(e, "`0 25 * * *`: hour 25 out of range 0–23");
        let e = Schedule::parse("61 2 * * *", Tz::UTC).unwrap_err();
        assert!(e.contains("minute 61 out of range 0–59"), "{e}");
        let e = Schedule::parse("0 2 * 13 *", Tz::UTC).unwrap_err();
        assert!(e.contains("month 13 out of range 1–12"), "{e}");
        let e = Schedule::parse("0 2 0 * *", Tz::UTC).unwrap_err();
        assert!(e.contains("day of month 0 out of range 1–31"), "{e}");
        let e = Schedule::parse("0 2 * * 1-9", Tz::UTC).unwrap_err();
        assert!(e.contains("day of week 9 out of range 0–7"), "{e}");
        let e = Schedule::parse("0 2 * *", Tz::UTC).unwrap_err();
        assert!(e.contains("4 fields"), "{e}");
        let e = Schedule::parse("0 2 * * FOO", Tz::UTC).unwrap_err();
        assert!(e.contains("day of week `FOO`"), "{e}");
        let e = Schedule::parse("*/0 2 * * *", Tz::UTC).unwrap_err();
        assert!(e.contains("step `0`"), "{e}");
    }

    #[test]
    fn accepted_forms() {
        for ok in [
            "0 2 * * *",
            "*/15 * * * *",
            "0 2 * * MON-FRI",
            "0 2 1,15 JAN,jul *",
            "30 3 * * 0",
            "0 4 * * 7",
            "@daily",
            "0 0 L * *",
        ] {
            Schedule::parse(ok, Tz::UTC).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn next_run_in_utc_and_a_zone() {
        let s = Schedule::parse("0 2 * * *", Tz::UTC).unwrap();
        let n = s.next_after(utc("2026-06-01T02:00:00Z")).unwrap();
        assert_eq!(n.with_timezone(&Utc), utc("2026-06-02T02:00:00Z"));
        let s = Schedule::parse("0 2 * * *", Tz::Europe__Berlin).unwrap();
        let n = s.next_after(utc("2026-06-01T12:00:00Z")).unwrap();
        // 02:00 CEST is 00:00 UTC.
        assert_eq!(n.with_timezone(&Utc), utc("2026-06-02T00:00:00Z"));
    }

    #[test]
    fn berlin_spring_forward_gap() {
        // 2026-03-29: Berlin's clocks go from 02:00 CET to 03:00 CEST; 02:30
        // does not exist. The job runs at 03:00 CEST (01:00 UTC) that day.
        let s = Schedule::parse("30 2 * * *", Tz::Europe__Berlin).unwrap();
        let n = s.next_after(utc("2026-03-28T12:00:00Z")).unwrap();
        assert_eq!(n.with_timezone(&Utc), utc("2026-03-29T01:00:00Z"));
        assert_eq!(
            n,
            Tz::Europe__Berlin
                .with_ymd_and_hms(2026, 3, 29, 3, 0, 0)
                .unwrap()
        );
        // And the day after, 02:30 CEST again.
        let n2 = s.next_after(n.with_timezone(&Utc)).unwrap();
        assert_eq!(n2.with_timezone(&Utc), utc("2026-03-30T00:30:00Z"));
    }

    #[test]
    fn berlin_fall_back_overlap_runs_once() {
        // 2026-10-25: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice.
        let s = Schedule::parse("30 2 * * *", Tz::Europe__Berlin).unwrap();
        let n = s.next_after(utc("2026-10-24T12:00:00Z")).unwrap();
        assert_eq!(n.with_timezone(&Utc), utc("2026-10-25T00:30:00Z"));
        let n2 = s.next_after(n.with_timezone(&Utc)).unwrap();
        assert_eq!(n2.with_timezone(&Utc), utc("2026-10-26T01:30:00Z"));
    }

    #[test]
    fn leap_day_runs_in_leap_years() {
        let s = Schedule::parse("0 0 29 2 *", Tz::UTC).unwrap();
        let n = s.next_after(utc("2026-12-02T00:00:00Z")).unwrap();
        assert_eq!(n.with_timezone(&Utc), utc("2028-02-29T00:00:00Z"));
        let n = s.next_after(utc("2028-02-29T00:00:00Z")).unwrap();
        assert_eq!(n.with_timezone(&Utc), utc("2032-02-29T00:00:00Z"));
    }

    #[test]
    fn time_zones() {
        assert_eq!(parse_tz("Europe/Berlin").unwrap(), Tz::Europe__Berlin);
        let e = parse_tz("Europe/Berln").unwrap_err();
        assert!(e.contains("did you mean `Europe/Berlin`"), "{e}");
        let e = parse_tz("europe/berlin").unwrap_err();
        assert!(e.contains("did you mean `Europe/Berlin`"), "{e}");
        assert!(parse_tz("Mars/Olympus").is_err());
    }
}
