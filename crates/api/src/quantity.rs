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
        let bytes = text.as_bytes();
        let mut i = 0;
        let negative = match bytes[0] {
            b'-' => {
                i += 1;
                true
            }
            b'+' => {
                i += 1;
                false
            }
            _ => false,
        };
        let int_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let int_digits = &text[int_start..i];
        let mut frac_digits = "";
        if i < bytes.len() && bytes[i] == b'.' {
            i += 1;
            let frac_start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            frac_digits = &text[frac_start..i];
        }
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(QuantityError::Number);
        }
        let suffix = &text[i..];
        // (power of ten, power of two) the suffix multiplies by.
        let (exp10, exp2): (i64, u32) = match suffix {
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
            s if s.starts_with(['e', 'E']) => {
                let exp = &s[1..];
                let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(QuantityError::Suffix(s.to_owned()));
                }
                // Anything beyond this overflows or underflows to the limits anyway.
                let e: i64 = exp.parse().map_err(|_| QuantityError::TooLarge)?;
                if e > 40 {
                    return Err(QuantityError::TooLarge);
                }
                (e.max(-40), 0)
            }
            s => return Err(QuantityError::Suffix(s.to_owned())),
        };

        // Mantissa as an integer with `frac_digits.len()` implied decimals.
        let mut mantissa: i128 = 0;
        for b in int_digits.bytes().chain(frac_digits.bytes()) {
            mantissa = mantissa
                .checked_mul(10)
                .and_then(|m| m.checked_add(i128::from(b - b'0')))
                .ok_or(QuantityError::TooLarge)?;
        }
        // nanos = mantissa * 10^(exp10 - frac_len + 9) * 2^exp2, rounding up any remainder.
        let scale = exp10 - frac_digits.len() as i64 + 9;
        let mut nanos = mantissa;
        if scale >= 0 {
            for _ in 0..scale {
                nanos = nanos.checked_mul(10).ok_or(QuantityError::TooLarge)?;
            }
        } else {
            let mut remainder = false;
            for _ in 0..(-scale) {
                remainder |= nanos % 10 != 0;
                nanos /= 10;
                if nanos == 0 {
                    break;
                }
            }
            if remainder || (nanos == 0 && mantissa != 0) {
                nanos += 1;
            }
        }
        nanos = nanos
            .checked_mul(1i128 << exp2)
            .ok_or(QuantityError::TooLarge)?;
        if nanos > i128::from(i64::MAX) * NANOS_PER_UNIT {
            return Err(QuantityError::TooLarge);
        }
        Ok(Self {
            nanos: if negative { -nanos } else { nanos },
        })
    }
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
