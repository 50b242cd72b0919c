//! Go-style durations (`8h`, `30m`, `1h30m`, `1.5h`), as Flux, External Secrets, OpenBao and
//! `kubectl` write them in the documents Tenantry reads and renders.
//!
//! The grammar is kube-rs's (`kube::core::Duration`, Go's `time.ParseDuration`), so what
//! Tenantry accepts is what the controllers it renders for accept. A value in `tenantry.yaml`
//! is parsed once, when the file is read, into a [`GoDuration`] that keeps the text as written
//! (rendered objects carry the platform's own spelling) and its value; nothing downstream parses
//! it again, so the file cannot be accepted by one command and refused by another. Errors are
//! worded for the person editing the file, not in kube's terms.

use std::{fmt, str::FromStr, time::Duration};

/// The longest duration accepted (about 136 years): anything longer is a typo.
const MAX_SECONDS: u64 = u32::MAX as u64;

/// Parse a duration: one or more `<number><unit>` parts, units `h`, `m`, `s`, `ms`, `us`/`µs`,
/// `ns`; `0` alone is zero. Negative durations and days are refused with a hint.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let hint = "write it like 8h, 30m or 1h30m";
    if text.is_empty() {
        return Err(format!("is empty; {hint}"));
    }
    if text.starts_with('-') {
        return Err(format!("{text:?} is negative; {hint}"));
    }
    // kube multiplies each part in `std::time::Duration`, which panics on overflow: bound the
    // size of every number (and the number of parts) before handing the text over.
    let numbers: Vec<&str> = text
        .split(|c: char| c.is_alphabetic())
        .filter(|n| !n.is_empty())
        .collect();
    if numbers.len() > 8 || numbers.iter().any(|n| n.len() > 12) {
        return Err(format!("{text:?} is too long; {hint}"));
    }
    let parsed: kube::core::Duration = text.parse().map_err(|e| match e {
        kube::core::duration::ParseError::NoUnit => format!("{text:?} has no unit; {hint}"),
        kube::core::duration::ParseError::InvalidUnit
            if text
                .split(|c: char| c.is_ascii_digit() || c == '.')
                .any(|unit| unit == "d") =>
        {
            format!("{text:?}: days are not a duration unit; write hours, e.g. 24h")
        }
        kube::core::duration::ParseError::InvalidUnit => {
            format!("{text:?} is not a duration: unknown unit; use h, m or s, e.g. 8h or 1h30m")
        }
        _ => format!("{text:?} is not a duration; {hint}"),
    })?;
    let duration = Duration::from(parsed);
    if duration.as_secs() > MAX_SECONDS {
        return Err(format!("{text:?} is too long"));
    }
    Ok(duration)
}

/// A duration the way a person would write it: `8h`, `1h30m`, `45m`, `90s`.
pub fn format(duration: Duration) -> String {
    let secs = duration.as_secs();
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// A valid Go duration, as written and as a value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GoDuration {
    text: String,
    value: Duration,
}

impl GoDuration {
    /// A whole number of seconds, spelt the way [`format`] spells it.
    pub fn from_secs(secs: u64) -> Self {
        let value = Duration::from_secs(secs.min(MAX_SECONDS));
        Self {
            text: format(value),
            value,
        }
    }

    /// The text as written in the file.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The value.
    pub fn duration(&self) -> Duration {
        self.value
    }
}

impl FromStr for GoDuration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Ok(Self {
            value: parse(text)?,
            text: text.trim().to_owned(),
        })
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

serde_as_text!(GoDuration);

/// The lifetime of a token the API server issues through TokenRequest: a [`GoDuration`] of at
/// least [`TokenDuration::MIN`], because the API server refuses shorter ones.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TokenDuration(GoDuration);

impl TokenDuration {
    /// The shortest token the API server issues: ten minutes.
    pub const MIN: Duration = Duration::from_secs(600);

    /// `hours` hours.
    pub fn hours(hours: u64) -> Self {
        Self(GoDuration::from_secs(hours.max(1) * 3600))
    }

    /// The text as written in the file.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The value.
    pub fn duration(&self) -> Duration {
        self.0.duration()
    }
}

impl FromStr for TokenDuration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let d: GoDuration = text.parse()?;
        if d.duration() < Self::MIN {
            return Err(format!(
                "{:?} is too short: must be at least 10m, the shortest token the API server issues",
                d.as_str()
            ));
        }
        Ok(Self(d))
    }
}

impl fmt::Display for TokenDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

serde_as_text!(TokenDuration);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        for (text, secs) in [
            ("1h", 3600.0),
            ("90s", 90.0),
            ("1h30m", 5400.0),
            ("10m", 600.0),
            ("500ms", 0.5),
            ("1.5h", 5400.0),
            ("24h0m0s", 86400.0),
            ("0", 0.0),
        ] {
            assert_eq!(parse(text).unwrap().as_secs_f64(), secs, "{text}");
        }
        for bad in [
            "", "1", "h", "1d", "1hh", "-1h", "1 h", "1e3h", ".", "8 hours", "1x",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(parse("1d").unwrap_err().contains("24h"));
        assert!(parse("10").unwrap_err().contains("no unit"));
    }

    #[test]
    fn huge_numbers_are_refused_not_a_panic() {
        for huge in [
            "99999999999999999999999h",
            "4000000000h4000000000h4000000000h4000000000h4000000000h",
            "1h1h1h1h1h1h1h1h1h1h",
            "200000000h",
        ] {
            assert!(parse(huge).is_err(), "{huge}");
        }
    }

    #[test]
    fn formats_round_trip() {
        for text in ["8h", "1h30m", "45m", "90s", "0s"] {
            let d = parse(text).unwrap();
            assert_eq!(parse(&format(d)).unwrap(), d);
        }
        assert_eq!(format(parse("90s").unwrap()), "1m30s");
    }

    #[test]
    fn keeps_the_text_as_written() {
        let d: GoDuration = "90m".parse().unwrap();
        assert_eq!(d.as_str(), "90m");
        assert_eq!(d.duration(), Duration::from_secs(5400));
        assert_eq!(TokenDuration::hours(8).as_str(), "8h");
    }

    #[test]
    fn tokens_live_at_least_ten_minutes() {
        assert!("10m".parse::<TokenDuration>().is_ok());
        let e = "5m".parse::<TokenDuration>().unwrap_err();
        assert!(e.contains("at least 10m"), "{e}");
    }
}
