//! Go-style durations (`8h`, `30m`, `1h30m`, `90s`), as Flux, External Secrets, OpenBao and
//! `kubectl` write them in the documents Tenantry reads and renders.
//!
//! One parser serves every use, so `tenantry.yaml` is validated by the same rules the cluster
//! side later applies to the same strings.

use std::time::Duration;

/// Parse a duration: one or more `<number><unit>` parts, units `h`, `m`, `s`, `ms`, `us`/`µs`,
/// `ns`; `0` alone is zero. Days are refused with a hint, as Go refuses them.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration; write it like 8h, 30m or 1h30m".to_owned());
    }
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("{text:?} is not a duration; write it like 8h, 30m or 1h30m"))?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let seconds = match unit {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            "" => {
                return Err(format!(
                    "{text:?} has no unit; write it like 8h, 30m or 1h30m"
                ));
            }
            "d" => {
                return Err(format!(
                    "{text:?}: days are not a duration unit; write hours, e.g. 24h"
                ));
            }
            other => {
                return Err(format!(
                    "{text:?}: unknown duration unit {other:?}; use h, m or s (e.g. 8h, 1h30m)"
                ));
            }
        };
        total += value * seconds;
        rest = after;
    }
    if !total.is_finite() || total > f64::from(u32::MAX) {
        return Err(format!("{text:?} is too long"));
    }
    Ok(Duration::from_secs_f64(total))
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
            ("0", 0.0),
        ] {
            assert_eq!(parse(text).unwrap().as_secs_f64(), secs, "{text}");
        }
        for bad in ["", "1", "h", "1d", "1hh", "-1h", "1 h", "1e3h", "."] {
            assert!(parse(bad).is_err(), "{bad:?}");
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
}
