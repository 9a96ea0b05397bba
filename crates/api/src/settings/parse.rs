//! Strict readers for setting values, so a wrong value is refused with what was
//! expected instead of being coerced (the `config` crate reads `1.5` as 2 and
//! `yes` as 1 for an integer).

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, Visitor};

/// How a value that was given is shown in an error: strings quoted, numbers as is.
fn shown(value: impl fmt::Display, quoted: bool) -> String {
    if quoted { format!("{:?}", value.to_string()) } else { value.to_string() }
}

/// The unsigned integer types settings use, with their largest value.
pub trait Whole: TryFrom<u64> {
    const MAX: u64;
}

impl Whole for u16 {
    const MAX: u64 = u16::MAX as u64;
}
impl Whole for u32 {
    const MAX: u64 = u32::MAX as u64;
}
impl Whole for u64 {
    const MAX: u64 = u64::MAX;
}
impl Whole for usize {
    const MAX: u64 = usize::MAX as u64;
}

struct WholeVisitor<T>(PhantomData<T>);

impl<T: Whole> WholeVisitor<T> {
    fn expected() -> String {
        if T::MAX == u64::MAX {
            "a whole number (0 or more)".to_owned()
        } else {
            format!("a whole number from 0 to {}", T::MAX)
        }
    }

    fn refuse<E: de::Error>(got: String) -> E {
        E::custom(format_args!("expected {}, got {got}", Self::expected()))
    }

    fn take<E: de::Error>(n: u64, got: String) -> Result<T, E> {
        if n > T::MAX {
            return Err(Self::refuse(got));
        }
        T::try_from(n).map_err(|_| Self::refuse(got))
    }
}

impl<'de, T: Whole> Visitor<'de> for WholeVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&Self::expected())
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<T, E> {
        Self::take(n, n.to_string())
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<T, E> {
        match u64::try_from(n) {
            Ok(n) => Self::take(n, n.to_string()),
            Err(_) => Err(Self::refuse(n.to_string())),
        }
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<T, E> {
        // `1e3` is read as a float; a whole one is still a whole number.
        if n.is_finite() && n >= 0.0 && n.fract() == 0.0 && n <= u64::MAX as f64 {
            Self::take(n as u64, n.to_string())
        } else {
            Err(Self::refuse(n.to_string()))
        }
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<T, E> {
        Err(Self::refuse(b.to_string()))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
        match s.trim().parse::<u64>() {
            Ok(n) => Self::take(n, shown(s, true)),
            Err(_) => Err(Self::refuse(shown(s, true))),
        }
    }
}

/// A whole number within the field's type.
pub fn whole<'de, D: Deserializer<'de>, T: Whole>(d: D) -> Result<T, D::Error> {
    d.deserialize_any(WholeVisitor(PhantomData))
}

/// An optional whole number (unset or empty: none).
pub fn optional_whole<'de, D: Deserializer<'de>, T: Whole>(d: D) -> Result<Option<T>, D::Error> {
    struct Optional<T>(PhantomData<T>);
    impl<'de, T: Whole> Visitor<'de> for Optional<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(&WholeVisitor::<T>::expected())
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
            WholeVisitor::<T>(PhantomData).visit_u64(n).map(Some)
        }
        fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
            WholeVisitor::<T>(PhantomData).visit_i64(n).map(Some)
        }
        fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
            WholeVisitor::<T>(PhantomData).visit_f64(n).map(Some)
        }
        fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
            WholeVisitor::<T>(PhantomData).visit_bool(b).map(Some)
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
            if s.trim().is_empty() {
                return Ok(None);
            }
            WholeVisitor::<T>(PhantomData).visit_str(s).map(Some)
        }
    }
    d.deserialize_any(Optional(PhantomData))
}

/// A rate per second: a finite number, 0 or more (0 switches the limit off).
pub fn rate<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    struct Rate;
    const EXPECTED: &str = "a number of 0 or more (0 switches the limit off)";
    fn check<E: de::Error>(n: f64, got: String) -> Result<f64, E> {
        if n.is_finite() && n >= 0.0 {
            Ok(n)
        } else {
            Err(E::custom(format_args!("expected {EXPECTED}, got {got}")))
        }
    }
    impl<'de> Visitor<'de> for Rate {
        type Value = f64;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(EXPECTED)
        }
        fn visit_f64<E: de::Error>(self, n: f64) -> Result<f64, E> {
            check(n, n.to_string())
        }
        fn visit_i64<E: de::Error>(self, n: i64) -> Result<f64, E> {
            check(n as f64, n.to_string())
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> Result<f64, E> {
            check(n as f64, n.to_string())
        }
        fn visit_bool<E: de::Error>(self, b: bool) -> Result<f64, E> {
            Err(E::custom(format_args!("expected {EXPECTED}, got {b}")))
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<f64, E> {
            match s.trim().parse::<f64>() {
                Ok(n) => check(n, shown(s, true)),
                Err(_) => Err(E::custom(format_args!("expected {EXPECTED}, got {s:?}"))),
            }
        }
    }
    d.deserialize_any(Rate)
}

/// `true` or `false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
pub fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    struct Flag;
    const EXPECTED: &str = "true or false";
    impl<'de> Visitor<'de> for Flag {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(EXPECTED)
        }
        fn visit_bool<E: de::Error>(self, b: bool) -> Result<bool, E> {
            Ok(b)
        }
        fn visit_i64<E: de::Error>(self, n: i64) -> Result<bool, E> {
            match n {
                0 => Ok(false),
                1 => Ok(true),
                _ => Err(E::custom(format_args!("expected {EXPECTED}, got {n}"))),
            }
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> Result<bool, E> {
            self.visit_i64(i64::try_from(n).unwrap_or(i64::MAX))
        }
        fn visit_f64<E: de::Error>(self, n: f64) -> Result<bool, E> {
            Err(E::custom(format_args!("expected {EXPECTED}, got {n}")))
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<bool, E> {
            match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(E::custom(format_args!("expected {EXPECTED}, got {s:?}"))),
            }
        }
    }
    d.deserialize_any(Flag)
}

/// An optional text: unset or empty (`JWT_PUBLIC_KEY=` in a compose file) is none.
pub fn optional_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value: Option<String> = serde::Deserialize::deserialize(d)?;
    Ok(value.filter(|v| !v.trim().is_empty()))
}

/// The error for a value that is not one of `choices`.
pub fn not_one_of(choices: &[&str], got: &str) -> String {
    format!("expected one of {}, got {got:?}", choices.join(", "))
}
