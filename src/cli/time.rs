//! Times on the command line: `--since`/`--until` and `WHEN..WHEN` ranges
//! (`now`, `90m`/`2h`/`7d` ago, Unix seconds, `YYYY-MM-DD[THH:MM]` UTC),
//! turned into the Unix seconds the daemon's history is kept in. Dates are
//! proleptic Gregorian in UTC; there are no time zones here.

use super::CliError;
use crate::report::stats::TimeRange;

pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A point in time: `now`, `90m`/`2h`/`7d`/`1w` ago (a leading `-` is
/// allowed), Unix seconds, or `YYYY-MM-DD[THH:MM[:SS]]` in UTC.
pub fn parse_when(s: &str, now: u64) -> Option<u64> {
    let t = s.trim();
    if t == "now" {
        return Some(now);
    }
    if t.len() >= 10 && t.as_bytes()[4] == b'-' {
        let (date, time) = t.split_once(['T', ' ']).unwrap_or((t, "00:00"));
        let mut d = date.split('-');
        let y: i64 = d.next()?.parse().ok()?;
        let m: u32 = d.next()?.parse().ok().filter(|m| (1..=12).contains(m))?;
        let day: u32 = d.next()?.parse().ok().filter(|d| (1..=31).contains(d))?;
        let mut hms = time.split(':');
        let h: u64 = hms.next()?.parse().ok().filter(|h| *h < 24)?;
        let mi: u64 = hms.next()?.parse().ok().filter(|m| *m < 60)?;
        let sec: u64 = hms
            .next()
            .map_or(Some(0), |x| x.parse().ok().filter(|s| *s < 60))?;
        let days = days_from_civil(y, m, day);
        return u64::try_from(days)
            .ok()
            .map(|d| d * 86_400 + h * 3600 + mi * 60 + sec);
    }
    let rel = t.strip_prefix('-').unwrap_or(t);
    let unit = match rel.chars().last()? {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        c if c.is_ascii_digit() && !t.starts_with('-') => {
            return t.parse().ok();
        }
        _ => return None,
    };
    let n: u64 = rel[..rel.len() - 1].parse().ok()?;
    Some(now.saturating_sub(n.checked_mul(unit)?))
}

fn when(s: &str, what: &str) -> Result<u64, CliError> {
    parse_when(s, now_unix()).ok_or_else(|| {
        CliError::Usage(format!(
            "{what}: '{s}' (expected now, 90m, 2h, 7d, Unix seconds or YYYY-MM-DD[THH:MM])"
        ))
    })
}

pub fn time_range(since: Option<&str>, until: Option<&str>) -> Result<TimeRange, CliError> {
    Ok(TimeRange {
        since: since.map(|s| when(s, "--since")).transpose()?,
        until: until.map(|s| when(s, "--until")).transpose()?,
    })
}

/// `WHEN..WHEN` (the end may be left out: now).
pub fn parse_range(s: &str) -> Result<TimeRange, CliError> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| CliError::Usage(format!("range '{s}': expected WHEN..WHEN")))?;
    let range = TimeRange {
        since: Some(when(a, "range start")?),
        until: Some(if b.is_empty() {
            now_unix()
        } else {
            when(b, "range end")?
        }),
    };
    if range.since >= range.until {
        return Err(CliError::Usage(format!("range '{s}' is empty")));
    }
    Ok(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_relative_absolute_and_ranges() {
        let now = 1_795_651_200 + 3600; // 2026-11-26 01:00 UTC
        assert_eq!(parse_when("now", now), Some(now));
        assert_eq!(parse_when("90m", now), Some(now - 5400));
        assert_eq!(parse_when("-2h", now), Some(now - 7200));
        assert_eq!(parse_when("7d", now), Some(now - 7 * 86_400));
        assert_eq!(parse_when("1700000000", now), Some(1_700_000_000));
        assert_eq!(parse_when("2026-11-26", now), Some(1_795_651_200));
        assert_eq!(parse_when("2026-11-26T01:00", now), Some(now));
        assert_eq!(parse_when("1970-01-01T00:00:01", now), Some(1));
        for bad in [
            "",
            "yesterday",
            "2h30",
            "-5",
            "2026-13-01",
            "2026-11-26T25:00",
            "5x",
        ] {
            assert_eq!(parse_when(bad, now), None, "{bad}");
        }
    }
}
