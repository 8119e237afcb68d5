//! Polish VAT rates as they appear in Optima and in shop data.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ContractError;

/// A VAT rate: a percentage (23, 8, 5, 0, ...) or one of the non-percentage
/// kinds Optima knows: `zw` (exempt), `np` (not subject), `oo` (reverse
/// charge). On the wire it is a string: "23", "8", "zw".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum VatRate {
    Percent(Decimal),
    Exempt,
    NotSubject,
    ReverseCharge,
}

impl VatRate {
    /// The percentage used for arithmetic: the non-percentage kinds carry no tax.
    pub fn percent(&self) -> Decimal {
        match self {
            VatRate::Percent(p) => *p,
            _ => Decimal::ZERO,
        }
    }
}

impl fmt::Display for VatRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VatRate::Percent(p) => write!(f, "{}", p.normalize()),
            VatRate::Exempt => f.write_str("zw"),
            VatRate::NotSubject => f.write_str("np"),
            VatRate::ReverseCharge => f.write_str("oo"),
        }
    }
}

impl FromStr for VatRate {
    type Err = ContractError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim().trim_end_matches('%');
        match trimmed.to_ascii_lowercase().as_str() {
            "zw" => return Ok(VatRate::Exempt),
            "np" => return Ok(VatRate::NotSubject),
            "oo" => return Ok(VatRate::ReverseCharge),
            _ => {}
        }
        let value = Decimal::from_str(trimmed).map_err(|_| ContractError::BadVatRate(s.into()))?;
        if value.is_sign_negative() || value > Decimal::ONE_HUNDRED {
            return Err(ContractError::BadVatRate(s.into()));
        }
        Ok(VatRate::Percent(value.normalize()))
    }
}

impl TryFrom<String> for VatRate {
    type Error = ContractError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<VatRate> for String {
    fn from(rate: VatRate) -> String {
        rate.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn parses_the_polish_rates() {
        assert_eq!(
            "23".parse::<VatRate>().ok(),
            Some(VatRate::Percent(dec!(23)))
        );
        assert_eq!(
            "23.00".parse::<VatRate>().ok(),
            Some(VatRate::Percent(dec!(23)))
        );
        assert_eq!(
            "8%".parse::<VatRate>().ok(),
            Some(VatRate::Percent(dec!(8)))
        );
        assert_eq!("ZW".parse::<VatRate>().ok(), Some(VatRate::Exempt));
        assert_eq!(VatRate::Percent(dec!(5.00)).to_string(), "5");
        assert!("-1".parse::<VatRate>().is_err());
        assert!("abc".parse::<VatRate>().is_err());
        assert!("101".parse::<VatRate>().is_err());
    }
}
