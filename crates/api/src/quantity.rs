//! Kubernetes resource quantities (`500m`, `2Gi`, `1e3`) as the API server reads them.
//!
//! Quota and limit values are written by people in YAML, where `cpu: 2` is a number and
//! `memory: 4Gi` a string; both must be accepted. They must also be compared (a request above
//! its limit, a default above the max), which the API server would only reject after half a
//! tenant had been applied. So a quantity is kept as the text the user wrote, and parsed
//! exactly (fixed point, never floating point) when it is validated or compared.

use std::{borrow::Cow, cmp::Ordering, fmt};

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A quantity exactly as written. [`Quantity::parse`] gives its value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Quantity(pub String);

impl Quantity {
    /// A quantity from its text; not validated until [`Quantity::parse`].
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Parse the text with the API server's grammar.
    pub fn parse(&self) -> Result<QuantityValue, QuantityError> {
        QuantityValue::parse(&self.0)
    }

    /// The k8s-openapi form, for rendering built-in objects.
    pub fn to_k8s(&self) -> k8s_openapi::apimachinery::pkg::api::resource::Quantity {
        k8s_openapi::apimachinery::pkg::api::resource::Quantity(self.0.clone())
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Quantity {
    fn from(text: &str) -> Self {
        Self(text.to_owned())
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Quantity;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Kubernetes quantity such as 500m, 2, 1.5 or 4Gi")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Quantity, E> {
                Ok(Quantity(v.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Quantity, E> {
                Ok(Quantity(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Quantity, E> {
                Ok(Quantity(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Quantity, E> {
                if v.is_finite() {
                    Ok(Quantity(v.to_string()))
                } else {
                    Err(E::invalid_value(de::Unexpected::Float(v), &self))
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl JsonSchema for Quantity {
    fn schema_name() -> Cow<'static, str> {
        "Quantity".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A Kubernetes quantity, e.g. 500m, 2, 1.5, 4Gi.",
            "x-kubernetes-int-or-string": true,
        })
    }
}

/// Why a quantity's text is not a quantity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QuantityError {
    /// The text is empty.
    Empty,
    /// The number part is malformed.
    Number,
    /// The suffix is not one Kubernetes knows.
    Suffix(String),
    /// The magnitude exceeds what the API server can store (2^63-1).
    TooLarge,
}

impl fmt::Display for QuantityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("a quantity cannot be empty"),
            Self::Number => f.write_str("the number is malformed"),
            Self::Suffix(s) => write!(
                f,
                "unknown suffix {s:?} (allowed: n, u, m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei, or an exponent like e3)"
            ),
            Self::TooLarge => f.write_str("the value is larger than 2^63-1"),
        }
    }
}

impl std::error::Error for QuantityError {}

/// A parsed quantity, held exactly in billionths of a unit.
///
/// Nano-units cover the API server's finest suffix (`n`), and the largest storable value
/// (2^63-1 units) times 10^9 still fits an `i128`, so every comparison is exact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QuantityValue {
    nanos: i128,
}

const NANOS_PER_UNIT: i128 = 1_000_000_000;

impl QuantityValue {
    /// The value in billionths of a unit.
    pub fn nanos(self) -> i128 {
        self.nanos
    }

    /// True when the value is below zero.
    pub fn is_negative(self) -> bool {
        self.nanos < 0
    }

    /// Parse with the grammar of `k8s.io/apimachinery/pkg/api/resource`:
    /// `<sign>?<digits>[.<digits>]<suffix>` where the suffix is binary SI (`Ki`…`Ei`),
    /// decimal SI (`n`, `u`, `m`, ``, `k`, `M`, `G`, `T`, `P`, `E`) or an exponent (`e3`, `E-2`).
    /// Fractions finer than a nano-unit are rounded up, as the API server rounds up to its
    /// precision.
    pub fn parse(text: &str) -> Result<Self, QuantityError> {
        if text.is_empty() {
            return Err(QuantityError::Empty);
        }
        let (negative, unsigned) = split_sign(text);
        let number = split_number(unsigned)?;
        let (exp10, exp2) = suffix_exponents(number.suffix)?;
        let nanos = number.nanos(exp10, exp2)?;
        Ok(Self {
            nanos: if negative { -nanos } else { nanos },
        })
    }
}

/// At most one sign, so `--1` is left for [`split_number`] to refuse, as the API server does.
fn split_sign(text: &str) -> (bool, &str) {
    if let Some(rest) = text.strip_prefix('-') {
        (true, rest)
    } else {
        (false, text.strip_prefix('+').unwrap_or(text))
    }
}

/// The unsigned number of a quantity, still as text: kept as digits until the suffix is known,
/// so the value can be built exactly in one step.
struct Number<'a> {
    int_digits: &'a str,
    frac_digits: &'a str,
    suffix: &'a str,
}

/// `<digits>[.<digits>]` then the rest as the suffix. Either side of the point may be empty
/// (`.5`, `5.`) but not both.
fn split_number(text: &str) -> Result<Number<'_>, QuantityError> {
    let (int_digits, rest) = split_digits(text);
    let (frac_digits, suffix) = match rest.strip_prefix('.') {
        Some(after_point) => split_digits(after_point),
        None => ("", rest),
    };
    if int_digits.is_empty() && frac_digits.is_empty() {
        return Err(QuantityError::Number);
    }
    Ok(Number {
        int_digits,
        frac_digits,
        suffix,
    })
}

/// The leading ASCII digits, and what follows them.
fn split_digits(text: &str) -> (&str, &str) {
    let end = text
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(text.len());
    text.split_at(end)
}

/// The (power of ten, power of two) a suffix multiplies by.
fn suffix_exponents(suffix: &str) -> Result<(i64, u32), QuantityError> {
    Ok(match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        s if s.starts_with(['e', 'E']) => (decimal_exponent(s)?, 0),
        s => return Err(QuantityError::Suffix(s.to_owned())),
    })
}

/// An exponent suffix (`e3`, `E-2`, `e+6`): the letter then a signed whole number. (`E` alone
/// is exa and never reaches here.)
fn decimal_exponent(suffix: &str) -> Result<i64, QuantityError> {
    let exp = &suffix[1..];
    let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(QuantityError::Suffix(suffix.to_owned()));
    }
    // Anything beyond this overflows or underflows to the limits anyway.
    let e: i64 = exp.parse().map_err(|_| QuantityError::TooLarge)?;
    if e > 40 {
        return Err(QuantityError::TooLarge);
    }
    Ok(e.max(-40))
}

impl Number<'_> {
    /// The magnitude in nano-units: `mantissa * 10^(exp10 - frac_len + 9) * 2^exp2`, rounding
    /// any remainder up and refusing what the API server could not store.
    fn nanos(&self, exp10: i64, exp2: u32) -> Result<i128, QuantityError> {
        let mantissa = self.mantissa()?;
        let scale = exp10 - self.frac_digits.len() as i64 + 9;
        let nanos = scale_by_power_of_ten(mantissa, scale)?
            .checked_mul(1i128 << exp2)
            .ok_or(QuantityError::TooLarge)?;
        if nanos > i128::from(i64::MAX) * NANOS_PER_UNIT {
            return Err(QuantityError::TooLarge);
        }
        Ok(nanos)
    }

    /// All the digits as one integer, with `frac_digits.len()` implied decimals.
    fn mantissa(&self) -> Result<i128, QuantityError> {
        let mut mantissa: i128 = 0;
        for b in self.int_digits.bytes().chain(self.frac_digits.bytes()) {
            mantissa = mantissa
                .checked_mul(10)
                .and_then(|m| m.checked_add(i128::from(b - b'0')))
                .ok_or(QuantityError::TooLarge)?;
        }
        Ok(mantissa)
    }
}

/// `value * 10^scale`. A negative scale divides, and any part lost is rounded up to the next
/// nano-unit: the API server never rounds a nonzero quantity down to zero or below its value.
fn scale_by_power_of_ten(value: i128, scale: i64) -> Result<i128, QuantityError> {
    let mut scaled = value;
    if scale >= 0 {
        for _ in 0..scale {
            scaled = scaled.checked_mul(10).ok_or(QuantityError::TooLarge)?;
        }
    } else {
        let mut remainder = false;
        for _ in 0..(-scale) {
            remainder |= scaled % 10 != 0;
            scaled /= 10;
            if scaled == 0 {
                break;
            }
        }
        if remainder || (scaled == 0 && value != 0) {
            scaled += 1;
        }
    }
    Ok(scaled)
}

impl PartialOrd<QuantityValue> for Quantity {
    fn partial_cmp(&self, other: &QuantityValue) -> Option<Ordering> {
        self.parse().ok().map(|v| v.cmp(other))
    }
}

impl PartialEq<QuantityValue> for Quantity {
    fn eq(&self, other: &QuantityValue) -> bool {
        self.parse().is_ok_and(|v| v == *other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nanos(s: &str) -> i128 {
        QuantityValue::parse(s).unwrap().nanos()
    }

    #[test]
    fn parses_the_suffixes_the_api_server_accepts() {
        assert_eq!(nanos("1"), 1_000_000_000);
        assert_eq!(nanos("500m"), 500_000_000);
        assert_eq!(nanos("0.5"), 500_000_000);
        assert_eq!(nanos(".5"), 500_000_000);
        assert_eq!(nanos("5."), 5_000_000_000);
        assert_eq!(nanos("1k"), 1_000_000_000_000);
        assert_eq!(nanos("1Ki"), 1024 * 1_000_000_000);
        assert_eq!(nanos("1.5Gi"), 1536 * 1024 * 1024 * 1_000_000_000);
        assert_eq!(nanos("1e3"), 1_000_000_000_000);
        assert_eq!(nanos("1E-3"), 1_000_000);
        assert_eq!(nanos("10n"), 10);
        assert_eq!(nanos("+2"), 2_000_000_000);
        assert_eq!(nanos("-2"), -2_000_000_000);
        assert_eq!(nanos("7Ei"), 7 * (1i128 << 60) * 1_000_000_000);
        assert_eq!(
            QuantityValue::parse("8Ei"),
            Err(QuantityError::TooLarge),
            "2^63 is one past the largest storable value"
        );
    }

    #[test]
    fn finer_than_a_nano_rounds_up() {
        assert_eq!(nanos("0.1n"), 1);
        assert_eq!(nanos("1.0000000001"), 1_000_000_001);
    }

    #[test]
    fn rejects_what_the_api_server_rejects() {
        for bad in [
            "", "m", "1x", "1 Gi", "1GB", "1e", "1e+", "--1", "1.2.3", "Gi", "1ki", "1e99",
        ] {
            assert!(QuantityValue::parse(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(QuantityValue::parse("16Ei"), Err(QuantityError::TooLarge));
    }

    #[test]
    fn orders_across_suffixes() {
        let a = QuantityValue::parse("1Gi").unwrap();
        let b = QuantityValue::parse("1G").unwrap();
        assert!(a > b);
        assert!(QuantityValue::parse("1500m").unwrap() > QuantityValue::parse("1").unwrap());
    }

    #[test]
    fn reads_numbers_and_strings_from_yaml_shapes() {
        let q: Quantity = serde_json::from_value(serde_json::json!(2)).unwrap();
        assert_eq!(q.as_str(), "2");
        let q: Quantity = serde_json::from_value(serde_json::json!(0.5)).unwrap();
        assert_eq!(q.as_str(), "0.5");
        let q: Quantity = serde_json::from_value(serde_json::json!("4Gi")).unwrap();
        assert_eq!(q.as_str(), "4Gi");
        assert!(serde_json::from_value::<Quantity>(serde_json::json!([1])).is_err());
    }
}
