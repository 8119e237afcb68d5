//! What the configuration tells the Optima layer: plain settings that
//! [`crate::config`] reads from the file and [`crate::optima`] acts on, so
//! neither depends on the other.

use std::collections::BTreeMap;

/// Which `CDN.DefCeny` column `TwC_TwCNumer` refers to. Comarch's own FAQ
/// selects `DfC_Lp` as the price number and a connector notes that after a
/// price level is deleted only `DfC_Lp` still matches (optima-real.md §0.6,
/// E3/E4); Comarch BI joins on `DfC_DfCId`. They agree until a level is
/// deleted, so `lp` is the default and `id` is there for a database where
/// the report says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PriceListKey {
    #[default]
    Lp,
    Id,
}

impl PriceListKey {
    pub(crate) fn column(self) -> &'static str {
        match self {
            PriceListKey::Lp => "DfC_Lp",
            PriceListKey::Id => "DfC_DfCId",
        }
    }
}

/// Which document a shop order becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DocumentKind {
    /// Rezerwacja odbiorcy: reserves the goods, realised later into FS/PA + WZ.
    Ro,
    /// Faktura sprzedaży draft.
    Fs,
    /// Paragon draft.
    Pa,
}

impl DocumentKind {
    pub fn symbol(self) -> &'static str {
        match self {
            DocumentKind::Ro => "RO",
            DocumentKind::Fs => "FS",
            DocumentKind::Pa => "PA",
        }
    }

    /// `DDf_Klasa`/`TrN_TypDokumentu` (E3, E5): RO 308, FS 302, PA 305.
    pub fn class(self) -> i32 {
        match self {
            DocumentKind::Ro => 308,
            DocumentKind::Fs => 302,
            DocumentKind::Pa => 305,
        }
    }
}

/// How orders are written, from the agent's `[orders]` configuration.
#[derive(Debug, Clone)]
pub struct WriteSettings {
    pub document: DocumentKind,
    /// `Mag_Symbol` of the warehouse the goods leave from.
    pub warehouse: String,
    /// `Knt_Kod` of the collective customer for private buyers; None creates
    /// a customer per buyer.
    pub collective_customer: Option<String>,
    /// Prefix of the codes of customers the agent creates.
    pub customer_code_prefix: String,
    /// Shop payment method id → `FPl_Nazwa`.
    pub payment_forms: BTreeMap<String, String>,
    pub default_payment_form: Option<String>,
    /// Shop shipping method id → the SKU of a service item.
    pub shipping_services: BTreeMap<String, String>,
    pub default_shipping_service: Option<String>,
    /// Shop fee name (e.g. `Pobranie`) → the SKU of a service item.
    pub fee_services: BTreeMap<String, String>,
    pub default_fee_service: Option<String>,
    /// The series for numbering schemes with `@seria`.
    pub series: Option<String>,
    /// What an order in another currency than złoty becomes.
    pub foreign_currency: ForeignCurrency,
    /// `TrN_KursNumer`: the number of the rate type in Optima's list of
    /// rate types that the document's rate is.
    pub currency_rate_type: i32,
}

/// What an order in a foreign currency becomes (`[orders] foreign_currency`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForeignCurrency {
    /// Parked for a person, who enters it by hand.
    #[default]
    Park,
    /// Written in its currency at the NBP average rate of the last working
    /// day before the document date, as Optima proposes it
    /// ([`crate::exchange_rates`]).
    Nbp,
}
