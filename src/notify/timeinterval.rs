//! Alertmanager's time intervals (`time_intervals`, `mute_time_intervals`):
//! `times`, `weekdays`, `days_of_month` (negative days count from the end of
//! the month), `months`, `years` and `location`, with the semantics of
//! Alertmanager 0.25's timeinterval package.
//!
//! Time zones come from the system's tz database (`$ZONEINFO`, then
//! /usr/share/zoneinfo), read by the small TZif reader below — the same
//! source Alertmanager's Go runtime reads, so both agree on offsets, and no
//! compiled-in zone table (chrono-tz) is added to the build. Instants after a
//! file's last transition follow its POSIX TZ footer (`M` rules).

pub use crate::model::{days_from_civil, days_in_month};
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Deserializer};

use crate::config::values::deserialize_parsed;

/// One interval: every present field must contain the instant.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeInterval {
    pub times: Option<Vec<TimeRange>>,
    pub weekdays: Option<Vec<WeekdayRange>>,
    pub days_of_month: Option<Vec<DayOfMonthRange>>,
    pub months: Option<Vec<MonthRange>>,
    pub years: Option<Vec<YearRange>>,
    pub location: Option<Location>,
}

/// Minutes of the day, `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeRange {
    pub start_minute: u32,
    pub end_minute: u32,
}

/// Inclusive ranges; weekdays count from Sunday = 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeekdayRange(pub i64, pub i64);
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DayOfMonthRange(pub i64, pub i64);
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MonthRange(pub i64, pub i64);
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct YearRange(pub i64, pub i64);

const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

fn go_atoi(s: &str) -> Result<i64, String> {
    s.parse::<i64>()
        .map_err(|_| format!("strconv.Atoi: parsing {s:?}: invalid syntax"))
}

/// `a` or `a:b`, lowercased, each side through `member`.
fn parse_range(
    text: &str,
    member: impl Fn(&str) -> Result<i64, String>,
) -> Result<(i64, i64), String> {
    let lower = text.to_lowercase();
    match lower.split_once(':') {
        Some((a, b)) => {
            if b.contains(':') {
                return Err(format!("couldn't parse range {lower}, invalid format"));
            }
            Ok((member(a)?, member(b)?))
        }
        None => {
            let v = member(&lower)?;
            Ok((v, v))
        }
    }
}

pub fn parse_weekdays(text: &str) -> Result<WeekdayRange, String> {
    let (b, e) = parse_range(text, |s| {
        WEEKDAYS
            .iter()
            .position(|d| *d == s)
            .map(|i| i as i64)
            .ok_or_else(|| format!("{s} is not a valid weekday"))
    })?;
    if b > e {
        return Err("start day cannot be before end day".into());
    }
    Ok(WeekdayRange(b, e))
}

pub fn parse_days_of_month(text: &str) -> Result<DayOfMonthRange, String> {
    let (b, e) = parse_range(text, go_atoi)?;
    for d in [b, e] {
        if d == 0 || !(-31..=31).contains(&d) {
            return Err(format!("{d} is not a valid day of the month: out of range"));
        }
    }
    if b < 0 && e > 0 {
        return Err("end day must be negative if start day is negative".into());
    }
    let check = |d: i64| if d < 0 { 28 + d } else { d };
    if check(b) > check(e) {
        return Err(format!("end day {e} is always before start day {b}"));
    }
    Ok(DayOfMonthRange(b, e))
}

pub fn parse_months(text: &str) -> Result<MonthRange, String> {
    let (b, e) = parse_range(text, |s| match MONTHS.iter().position(|m| *m == s) {
        Some(i) => Ok(i as i64 + 1),
        None => s
            .parse::<i64>()
            .map_err(|_| format!("{s} is not a valid month")),
    })?;
    if b > e {
        let name = |m: i64| {
            usize::try_from(m - 1)
                .ok()
                .and_then(|i| MONTHS.get(i))
                .copied()
                .unwrap_or("")
        };
        return Err(format!(
            "end month {} is before start month {}",
            name(e),
            name(b)
        ));
    }
    Ok(MonthRange(b, e))
}

pub fn parse_years(text: &str) -> Result<YearRange, String> {
    let (b, e) = parse_range(text, go_atoi)?;
    if b > e {
        return Err(format!("end year {e} is before start year {b}"));
    }
    Ok(YearRange(b, e))
}

/// `HH:MM` (00:00–23:59) or `24:00`, as minutes of the day.
pub fn parse_time_of_day(text: &str) -> Result<u32, String> {
    let bad = || format!("couldn't parse timestamp {text}, invalid format");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 || !(h.bytes().chain(m.bytes())).all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if (h < 24 && m < 60) || (h == 24 && m == 0) {
        Ok(h * 60 + m)
    } else {
        Err(bad())
    }
}

macro_rules! parsed_range {
    ($($ty:ty => $parse:ident, $what:literal;)*) => {$(
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                deserialize_parsed(d, $what, $parse)
            }
        }
    )*};
}

parsed_range! {
    WeekdayRange => parse_weekdays, "a weekday or range such as `monday:friday`";
    DayOfMonthRange => parse_days_of_month, "a day of the month or range such as `1:7` or `-3:-1`";
    MonthRange => parse_months, "a month or range such as `january:march` or `1:3`";
    YearRange => parse_years, "a year or range such as `2024:2025`";
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeRange {
    #[serde(default)]
    start_time: String,
    #[serde(default)]
    end_time: String,
}

impl<'de> Deserialize<'de> for TimeRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let raw = RawTimeRange::deserialize(d)?;
        if raw.start_time.is_empty() || raw.end_time.is_empty() {
            return Err(D::Error::custom(
                "both start and end times must be provided",
            ));
        }
        let start = parse_time_of_day(&raw.start_time).map_err(D::Error::custom)?;
        let end = parse_time_of_day(&raw.end_time).map_err(D::Error::custom)?;
        if start >= end {
            return Err(D::Error::custom(
                "start time cannot be equal or greater than end time",
            ));
        }
        Ok(TimeRange {
            start_minute: start,
            end_minute: end,
        })
    }
}

/// A named time zone, loaded at config load.
#[derive(Clone, Debug)]
pub struct Location {
    pub name: String,
    zone: Arc<Zone>,
}

impl<'de> Deserialize<'de> for Location {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_parsed(d, "a time zone name such as `Europe/Berlin`", |s| {
            Location::load(s)
        })
    }
}

impl Location {
    pub fn utc() -> Location {
        Location {
            name: "UTC".into(),
            zone: Arc::new(Zone::fixed(0)),
        }
    }

    /// Loads a zone as Go's `time.LoadLocation` does: `""` and `UTC` are UTC,
    /// `Local` is the system zone, anything else a tz database name.
    pub fn load(name: &str) -> Result<Location, String> {
        if name.is_empty() || name == "UTC" {
            return Ok(Location::utc());
        }
        let unknown = || format!("unknown time zone {name}");
        let data = if name == "Local" {
            std::fs::read("/etc/localtime").map_err(|_| unknown())?
        } else {
            if name.starts_with('/') || name.contains("..") || name.contains('\\') {
                return Err(format!("invalid time zone name {name:?}"));
            }
            let mut dirs: Vec<PathBuf> = Vec::new();
            if let Some(dir) = std::env::var_os("ZONEINFO") {
                dirs.push(dir.into());
            }
            for d in [
                "/usr/share/zoneinfo",
                "/usr/share/lib/zoneinfo",
                "/usr/lib/locale/TZ",
            ] {
                dirs.push(d.into());
            }
            dirs.iter()
                .find_map(|dir| std::fs::read(dir.join(name)).ok())
                .ok_or_else(unknown)?
        };
        let zone = Zone::parse(&data).ok_or_else(unknown)?;
        Ok(Location {
            name: name.to_string(),
            zone: Arc::new(zone),
        })
    }

    /// Offset from UTC, in seconds, at a Unix time.
    pub fn offset_at(&self, unix_secs: i64) -> i64 {
        self.zone.offset_at(unix_secs)
    }
}

/// A parsed TZif file: transitions, the offsets they switch to, and the
/// footer rule for later instants.
#[derive(Debug)]
struct Zone {
    transitions: Vec<(i64, usize)>,
    /// (UTC offset in seconds, is DST)
    types: Vec<(i64, bool)>,
    footer: Option<PosixTz>,
}

impl Zone {
    fn fixed(offset: i64) -> Zone {
        Zone {
            transitions: Vec::new(),
            types: vec![(offset, false)],
            footer: None,
        }
    }

    fn parse(data: &[u8]) -> Option<Zone> {
        let header = |at: usize| -> Option<(u8, [usize; 6])> {
            let h = data.get(at..at + 44)?;
            if &h[..4] != b"TZif" {
                return None;
            }
            let mut counts = [0usize; 6];
            for (i, c) in counts.iter_mut().enumerate() {
                let b = &h[20 + 4 * i..24 + 4 * i];
                *c = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
            }
            Some((h[4], counts))
        };
        // counts: isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
        let block_len = |c: &[usize; 6], time_size: usize| {
            c[3] * time_size + c[3] + c[4] * 6 + c[5] + c[2] * (time_size + 4) + c[1] + c[0]
        };
        let (version, counts) = header(0)?;
        let (mut at, counts, time_size) = if version >= b'2' {
            let second = 44 + block_len(&counts, 4);
            let (_, counts2) = header(second)?;
            (second + 44, counts2, 8)
        } else {
            (44, counts, 4)
        };
        let (timecnt, typecnt) = (counts[3], counts[4]);
        let mut take = |n: usize| -> Option<&[u8]> {
            let s = data.get(at..at + n)?;
            at += n;
            Some(s)
        };
        let times = take(timecnt * time_size)?;
        let indices = take(timecnt)?;
        let type_bytes = take(typecnt * 6)?;
        let mut types = Vec::with_capacity(typecnt);
        for t in type_bytes.chunks_exact(6) {
            types.push((
                i64::from(i32::from_be_bytes([t[0], t[1], t[2], t[3]])),
                t[4] != 0,
            ));
        }
        if types.is_empty() {
            return None;
        }
        let mut transitions = Vec::with_capacity(timecnt);
        for (i, chunk) in times.chunks_exact(time_size).enumerate() {
            let when = if time_size == 8 {
                i64::from_be_bytes(chunk.try_into().ok()?)
            } else {
                i64::from(i32::from_be_bytes(chunk.try_into().ok()?))
            };
            let idx = usize::from(indices[i]);
            if idx >= types.len() {
                return None;
            }
            transitions.push((when, idx));
        }
        let rest_start =
            at + block_len(&counts, time_size) - timecnt * (time_size + 1) - typecnt * 6;
        let footer = if version >= b'2' {
            data.get(rest_start..)
                .and_then(|rest| std::str::from_utf8(rest).ok())
                .and_then(|s| s.trim_start_matches('\n').split('\n').next())
                .and_then(PosixTz::parse)
        } else {
            None
        };
        Some(Zone {
            transitions,
            types,
            footer,
        })
    }

    fn offset_at(&self, t: i64) -> i64 {
        match self.transitions.partition_point(|(when, _)| *when <= t) {
            0 => {
                // Before the first transition: the first standard-time type.
                self.types
                    .iter()
                    .find(|(_, dst)| !dst)
                    .unwrap_or(&self.types[0])
                    .0
            }
            n if n == self.transitions.len() && self.footer.is_some() => {
                self.footer.as_ref().map_or(0, |f| f.offset_at(t))
            }
            n => self.types[self.transitions[n - 1].1].0,
        }
    }
}

/// A POSIX TZ rule such as `CET-1CEST,M3.5.0,M10.5.0/3` (only `Mm.w.d` dates).
#[derive(Debug)]
struct PosixTz {
    std_offset: i64,
    dst: Option<(i64, Rule, Rule)>,
}

#[derive(Debug, Clone, Copy)]
struct Rule {
    month: i64,
    week: i64,
    weekday: i64,
    time: i64,
}

impl PosixTz {
    fn parse(s: &str) -> Option<PosixTz> {
        let mut rest = s;
        skip_name(&mut rest)?;
        let std_offset = -parse_hms(&mut rest)?;
        if rest.is_empty() {
            return Some(PosixTz {
                std_offset,
                dst: None,
            });
        }
        skip_name(&mut rest)?;
        let dst_offset = if rest.starts_with(',') {
            std_offset + 3600
        } else {
            -parse_hms(&mut rest)?
        };
        let rest = rest.strip_prefix(',')?;
        let (a, b) = rest.split_once(',')?;
        Some(PosixTz {
            std_offset,
            dst: Some((dst_offset, Rule::parse(a)?, Rule::parse(b)?)),
        })
    }

    fn offset_at(&self, t: i64) -> i64 {
        let Some((dst_offset, start, end)) = self.dst else {
            return self.std_offset;
        };
        let (year, _, _) = crate::model::civil_from_days((t + self.std_offset).div_euclid(86400));
        let start_utc = start.local_time(year) - self.std_offset;
        let end_utc = end.local_time(year) - dst_offset;
        let in_dst = if start_utc < end_utc {
            start_utc <= t && t < end_utc
        } else {
            !(end_utc <= t && t < start_utc)
        };
        if in_dst {
            dst_offset
        } else {
            self.std_offset
        }
    }
}

impl Rule {
    fn parse(s: &str) -> Option<Rule> {
        let s = s.strip_prefix('M')?;
        let (date, time) = match s.split_once('/') {
            Some((d, t)) => {
                let mut t = t;
                (d, parse_hms(&mut t).filter(|_| t.is_empty())?)
            }
            None => (s, 7200),
        };
        let mut parts = date.split('.').map(|p| p.parse::<i64>().ok());
        let (month, week, weekday) = (parts.next()??, parts.next()??, parts.next()??);
        if !(1..=12).contains(&month) || !(1..=5).contains(&week) || !(0..=6).contains(&weekday) {
            return None;
        }
        Some(Rule {
            month,
            week,
            weekday,
            time,
        })
    }

    /// The rule's instant in `year`, as seconds of local time since the epoch.
    fn local_time(&self, year: i64) -> i64 {
        let first = days_from_civil(year, self.month, 1);
        let first_weekday = weekday_of(first);
        let mut day = 1 + (self.weekday - first_weekday).rem_euclid(7) + (self.week - 1) * 7;
        let len = days_in_month(year, self.month);
        while day > len {
            day -= 7;
        }
        (first + day - 1) * 86400 + self.time
    }
}

fn skip_name(rest: &mut &str) -> Option<()> {
    if let Some(r) = rest.strip_prefix('<') {
        let end = r.find('>')?;
        *rest = &r[end + 1..];
    } else {
        let n = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        if n < 3 {
            return None;
        }
        *rest = &rest[n..];
    }
    Some(())
}

/// `[+-]h[h][:mm[:ss]]` in seconds.
fn parse_hms(rest: &mut &str) -> Option<i64> {
    let mut sign = 1;
    if let Some(r) = rest.strip_prefix('-') {
        sign = -1;
        *rest = r;
    } else if let Some(r) = rest.strip_prefix('+') {
        *rest = r;
    }
    let mut total = 0;
    for (i, scale) in [3600, 60, 1].into_iter().enumerate() {
        if i > 0 {
            match rest.strip_prefix(':') {
                Some(r) => *rest = r,
                None => break,
            }
        }
        let n = rest.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        total += rest[..n].parse::<i64>().ok()? * scale;
        *rest = &rest[n..];
    }
    Some(sign * total)
}

/// Sunday = 0.
fn weekday_of(days: i64) -> i64 {
    (days + 4).rem_euclid(7)
}

impl TimeInterval {
    /// Whether the instant (Unix seconds) is in this interval.
    pub fn contains(&self, unix_secs: i64) -> bool {
        let offset = self.location.as_ref().map_or(0, |l| l.offset_at(unix_secs));
        let local = unix_secs + offset;
        let days = local.div_euclid(86400);
        let minute = local.rem_euclid(86400) / 60;
        let (year, month, day) = crate::model::civil_from_days(days);
        if let Some(times) = &self.times {
            if !times
                .iter()
                .any(|r| minute >= i64::from(r.start_minute) && minute < i64::from(r.end_minute))
            {
                return false;
            }
        }
        if let Some(ranges) = &self.days_of_month {
            let len = days_in_month(year, month);
            let hit = ranges.iter().any(|r| {
                let from_end = |d: i64| if d < 0 { len + d + 1 } else { d };
                let (begin, end) = (from_end(r.0), from_end(r.1));
                if begin > len {
                    return false;
                }
                let (begin, end) = (begin.clamp(-len, len), end.clamp(-len, len));
                day >= begin && day <= end
            });
            if !hit {
                return false;
            }
        }
        if let Some(ranges) = &self.months {
            if !ranges.iter().any(|r| month >= r.0 && month <= r.1) {
                return false;
            }
        }
        if let Some(ranges) = &self.weekdays {
            let wd = weekday_of(days);
            if !ranges.iter().any(|r| wd >= r.0 && wd <= r.1) {
                return false;
            }
        }
        if let Some(ranges) = &self.years {
            if !ranges.iter().any(|r| year >= r.0 && year <= r.1) {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i64, m: i64, d: i64, h: i64, min: i64) -> i64 {
        days_from_civil(y, m, d) * 86400 + h * 3600 + min * 60
    }

    #[test]
    fn ranges_parse_and_refuse_like_alertmanager() {
        assert_eq!(parse_weekdays("Monday:FRIDAY").unwrap(), WeekdayRange(1, 5));
        assert!(parse_weekdays("friday:monday").is_err());
        assert!(parse_weekdays("funday").is_err());
        assert_eq!(
            parse_days_of_month("-3:-1").unwrap(),
            DayOfMonthRange(-3, -1)
        );
        assert!(parse_days_of_month("0").is_err());
        assert!(parse_days_of_month("-1:5").is_err());
        assert!(parse_days_of_month("10:2").is_err());
        assert_eq!(parse_months("may:8").unwrap(), MonthRange(5, 8));
        assert!(parse_months("december:january").is_err());
        assert!(parse_years("2025:2024").is_err());
        assert_eq!(parse_time_of_day("24:00").unwrap(), 1440);
        for bad in ["24:01", "7:00", "07:60", "0700"] {
            assert!(parse_time_of_day(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn civil_dates_round_trip() {
        for days in [-800_000i64, -1, 0, 59, 18_000, 20_000, 2_000_000] {
            let (y, m, d) = crate::model::civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(weekday_of(days_from_civil(2024, 3, 31)), 0);
    }

    #[test]
    fn negative_days_count_from_month_end() {
        let last_two = TimeInterval {
            days_of_month: Some(vec![DayOfMonthRange(-2, -1)]),
            ..Default::default()
        };
        assert!(last_two.contains(at(2024, 2, 28, 12, 0)));
        assert!(last_two.contains(at(2024, 2, 29, 0, 0)));
        assert!(!last_two.contains(at(2024, 2, 27, 23, 59)));
        assert!(last_two.contains(at(2023, 4, 29, 1, 0)));
        assert!(!last_two.contains(at(2023, 4, 28, 1, 0)));
    }

    #[test]
    fn weekday_and_times_in_utc() {
        // Sunday 02:00–04:00 UTC.
        let window = TimeInterval {
            times: Some(vec![TimeRange {
                start_minute: 120,
                end_minute: 240,
            }]),
            weekdays: Some(vec![WeekdayRange(0, 0)]),
            ..Default::default()
        };
        assert!(window.contains(at(2026, 11, 22, 2, 0)));
        assert!(window.contains(at(2026, 11, 22, 3, 59)));
        assert!(!window.contains(at(2026, 11, 22, 4, 0)));
        assert!(!window.contains(at(2026, 11, 23, 2, 30)));
    }

    #[test]
    fn locations_follow_the_tz_database() {
        let Ok(berlin) = Location::load("Europe/Berlin") else {
            // No tz database on this machine: nothing to compare with.
            return;
        };
        assert_eq!(berlin.offset_at(at(2024, 1, 15, 12, 0)), 3600);
        assert_eq!(berlin.offset_at(at(2024, 7, 15, 12, 0)), 7200);
        // DST starts 2024-03-31 01:00 UTC.
        assert_eq!(berlin.offset_at(at(2024, 3, 31, 0, 59)), 3600);
        assert_eq!(berlin.offset_at(at(2024, 3, 31, 1, 0)), 7200);
        // Past the file's transitions, the footer rule applies.
        assert_eq!(berlin.offset_at(at(2090, 7, 1, 0, 0)), 7200);
        assert_eq!(berlin.offset_at(at(2090, 12, 1, 0, 0)), 3600);
        let ny = Location::load("America/New_York").unwrap();
        assert_eq!(ny.offset_at(at(2024, 7, 1, 0, 0)), -4 * 3600);
        assert_eq!(ny.offset_at(at(2091, 1, 1, 0, 0)), -5 * 3600);
        assert!(Location::load("Mars/Olympus").is_err());
        assert!(Location::load("../etc/passwd").is_err());
        // 09:00–17:00 Berlin time, in summer = 07:00–15:00 UTC.
        let office = TimeInterval {
            times: Some(vec![TimeRange {
                start_minute: 540,
                end_minute: 1020,
            }]),
            location: Some(berlin),
            ..Default::default()
        };
        assert!(office.contains(at(2024, 7, 1, 7, 0)));
        assert!(!office.contains(at(2024, 7, 1, 6, 59)));
        assert!(office.contains(at(2024, 1, 2, 8, 0)));
        assert!(!office.contains(at(2024, 1, 2, 7, 59)));
    }

    #[test]
    fn posix_footer_rules() {
        let tz = PosixTz::parse("AEST-10AEDT,M10.1.0,M4.1.0/3").unwrap();
        // Southern hemisphere: DST over the new year.
        assert_eq!(tz.offset_at(at(2040, 1, 10, 0, 0)), 11 * 3600);
        assert_eq!(tz.offset_at(at(2040, 6, 10, 0, 0)), 10 * 3600);
        assert_eq!(PosixTz::parse("<+0330>-3:30").unwrap().offset_at(0), 12_600);
        assert!(Zone::parse(b"TZif2 garbage").is_none());
    }
}
