//! Money: exact decimals, never floating point. Stored as NUMERIC(14,2), sent and taken as a
//! string with two decimal places (`"125000.00"`), always beside an ISO 4217 currency.

use std::fmt;
use std::str::FromStr;

use diesel::deserialize::{FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{Output, ToSql};
use diesel::sql_types::Numeric;
use rust_decimal::Decimal;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

/// Digits before the point that NUMERIC(14,2) holds.
const MAX_INTEGER_DIGITS: usize = 12;

/// An amount of money with at most two decimal places.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    AsExpression,
    FromSqlRow,
    ToSchema,
)]
#[diesel(sql_type = Numeric)]
#[schema(value_type = String, format = "decimal", example = "125000.00")]
pub struct Money(Decimal);

/// The document's pattern of an amount of 0.00 or more that [`Money`] parses: at most 12
/// digits before the point (leading zeros aside) and two after; `-0` is zero.
pub const NON_NEGATIVE_PATTERN: &str = "^(0*[0-9]{1,12}(\\.[0-9]{1,2})?|-0+(\\.0{1,2})?)$";
/// The same for an amount above 0.00.
pub const POSITIVE_PATTERN: &str =
    "^0*([1-9][0-9]{0,11}(\\.[0-9]{1,2})?|0\\.(0[1-9]|[1-9][0-9]?))$";

fn amount_schema(pattern: &str, description: &str) -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(utoipa::openapi::SchemaFormat::Custom(
            "decimal".into(),
        )))
        .pattern(Some(pattern))
        .description(Some(description))
        .examples(["125000.00"])
        .build()
}

/// An amount field that takes 0.00 or more.
pub fn non_negative_schema() -> utoipa::openapi::Object {
    amount_schema(
        NON_NEGATIVE_PATTERN,
        "A decimal string with at most two places, 0.00 or more (answered with exactly two).",
    )
}

/// An amount field that takes more than 0.00.
pub fn positive_schema() -> utoipa::openapi::Object {
    amount_schema(
        POSITIVE_PATTERN,
        "A decimal string with at most two places, above 0.00 (answered with exactly two).",
    )
}

impl Money {
    pub const ZERO: Money = Money(Decimal::ZERO);

    pub fn amount(&self) -> Decimal {
        self.0
    }

    pub fn is_negative(&self) -> bool {
        self.0.is_sign_negative() && !self.0.is_zero()
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    pub fn checked_sub(self, other: Money) -> Option<Money> {
        self.0.checked_sub(other.0).map(Money)
    }
}

impl From<Decimal> for Money {
    /// Rounds to cents (banker's rounding), for sums computed in SQL or code.
    fn from(value: Decimal) -> Self {
        Money(value.round_dp(2))
    }
}

/// Why a text is not an amount.
#[derive(Debug, PartialEq, Eq)]
pub struct MoneyError(&'static str);

impl fmt::Display for MoneyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl FromStr for Money {
    type Err = MoneyError;

    /// `123`, `123.4` or `123.45`, optionally negative; nothing else (no exponent, no
    /// thousands separators, no more than two places).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let digits = text.strip_prefix('-').unwrap_or(text);
        let (whole, cents) = digits.split_once('.').unwrap_or((digits, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || !all_digits(whole)
            || !all_digits(cents)
            || (digits.contains('.') && cents.is_empty())
        {
            return Err(MoneyError("must be a decimal string such as \"125000.00\""));
        }
        if cents.len() > 2 {
            return Err(MoneyError("must have at most two decimal places"));
        }
        if whole.trim_start_matches('0').len() > MAX_INTEGER_DIGITS {
            return Err(MoneyError(
                "is too large (at most 12 digits before the point)",
            ));
        }
        Decimal::from_str(text)
            .map(Money)
            .map_err(|_| MoneyError("is not a decimal amount"))
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2}", self.0)
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MoneyVisitor;

        // A JSON number is refused as a value (422), not as a wrong type: floating point
        // must never carry money, and the client should be told how to send it.
        const NOT_A_STRING: &str =
            "money must be a decimal string such as \"125000.00\", not a JSON number";

        impl Visitor<'_> for MoneyVisitor {
            type Value = Money;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a decimal string with at most two places")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Money, E> {
                text.parse()
                    .map_err(|e: MoneyError| E::custom(format!("money {e}")))
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Money, E> {
                Err(E::custom(NOT_A_STRING))
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Money, E> {
                Err(E::custom(NOT_A_STRING))
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Money, E> {
                Err(E::custom(NOT_A_STRING))
            }
        }

        deserializer.deserialize_any(MoneyVisitor)
    }
}

impl ToSql<Numeric, Pg> for Money {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> diesel::serialize::Result {
        <Decimal as ToSql<Numeric, Pg>>::to_sql(&self.0, out)
    }
}

impl FromSql<Numeric, Pg> for Money {
    fn from_sql(bytes: PgValue<'_>) -> diesel::deserialize::Result<Self> {
        <Decimal as FromSql<Numeric, Pg>>::from_sql(bytes).map(Money)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_up_to_two_places_and_answers_exactly_two() {
        for (text, shown) in [
            ("0", "0.00"),
            ("125000", "125000.00"),
            ("12.5", "12.50"),
            ("12.34", "12.34"),
            ("-3.10", "-3.10"),
        ] {
            assert_eq!(text.parse::<Money>().unwrap().to_string(), shown, "{text}");
        }
        assert_eq!(
            serde_json::to_string(&"7.1".parse::<Money>().unwrap()).unwrap(),
            "\"7.10\""
        );
    }

    #[test]
    fn refuses_what_is_not_an_exact_amount() {
        for bad in [
            "",
            "-",
            "1.",
            ".5",
            "1.234",
            "1e3",
            "1,000.00",
            " 1",
            "abc",
            "1.2.3",
            "+1",
            "1234567890123",
        ] {
            assert!(bad.parse::<Money>().is_err(), "{bad:?}");
        }
        assert!("999999999999.99".parse::<Money>().is_ok());
    }

    #[test]
    fn json_numbers_are_refused_with_a_clear_message() {
        let err = serde_json::from_str::<Money>("12.5")
            .unwrap_err()
            .to_string();
        assert!(err.contains("decimal string"), "{err}");
        assert!(serde_json::from_str::<Money>("\"12.50\"").is_ok());
    }

    #[test]
    fn sums_are_exact() {
        let a: Money = "0.10".parse().unwrap();
        let b: Money = "0.20".parse().unwrap();
        assert_eq!(a.checked_add(b).unwrap().to_string(), "0.30");
        assert!("-0.01".parse::<Money>().unwrap().is_negative());
        assert!(!Money::ZERO.is_negative());
    }
}
