//! The canonical documents every layer shares, and nothing else: the purchase order as the
//! bridge keeps it (decoded from Ingram's webhook, rendered into an 850), and which Ingram API a
//! job calls. This is the bottom layer: it imports nothing from the rest of the crate, so the
//! store, the translators and the workers can all depend on it without depending on each other.
//! [`canonical`] is the PO's documented JSON shape, the one mapping programs see as `$po`.

pub mod account;
pub mod canonical;

pub use account::{po_key, split_po_key, PoRef, DEFAULT_ACCOUNT};

use std::fmt;

use serde::{Deserialize, Serialize};

/// A decimal amount kept exactly as `units / 10^scale` (prices, totals).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amount {
    pub units: i128,
    pub scale: u32,
}

impl Amount {
    /// Parses `123`, `123.45`, `-0.5`; at most 6 decimals and 18 integer digits.
    pub fn parse(s: &str) -> Option<Amount> {
        let s = s.trim();
        let (neg, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if int.is_empty() && frac.is_empty()
            || int.len() > 18
            || frac.len() > 6
            || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit())
        {
            return None;
        }
        let mut units: i128 = 0;
        for c in int.chars().chain(frac.chars()) {
            units = units * 10 + i128::from(c as u8 - b'0');
        }
        Some(Amount {
            units: if neg { -units } else { units },
            scale: frac.len() as u32,
        })
    }

    pub fn zero() -> Amount {
        Amount { units: 0, scale: 0 }
    }

    fn rescale(self, scale: u32) -> i128 {
        self.units * 10i128.pow(scale - self.scale)
    }

    pub fn plus(self, other: Amount) -> Amount {
        let scale = self.scale.max(other.scale);
        Amount {
            units: self.rescale(scale) + other.rescale(scale),
            scale,
        }
    }

    pub fn times(self, n: u64) -> Amount {
        Amount {
            units: self.units.saturating_mul(i128::from(n)),
            scale: self.scale,
        }
    }
}

impl fmt::Display for Amount {
    /// Plain decimal with at least two decimals when fractional (`617.25`, `12`, `0.5` → `0.50`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let neg = self.units < 0;
        let abs = self.units.unsigned_abs();
        let pow = 10u128.pow(self.scale);
        let (int, mut frac) = (abs / pow, abs % pow);
        let mut scale = self.scale;
        while scale > 2 && frac % 10 == 0 {
            frac /= 10;
            scale -= 1;
        }
        if neg {
            f.write_str("-")?;
        }
        if scale == 0 {
            write!(f, "{int}")
        } else if scale == 1 {
            write!(f, "{int}.{frac}0")
        } else {
            write!(f, "{int}.{frac:0width$}", width = scale as usize)
        }
    }
}

/// A postal party from the webhook (`shipToInfo`, `billToInfo`, ...). All optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub company_name: Option<String>,
    pub contact: Option<String>,
    pub address_lines: Vec<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub country_code: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub ingram_line_number: String,
    pub ingram_part_number: Option<String>,
    pub vendor_part_number: Option<String>,
    pub upc: Option<String>,
    pub description: Option<String>,
    pub quantity: u64,
    pub unit_of_measure: String,
    pub unit_price: Option<Amount>,
    /// `YYYY-MM-DD`.
    pub requested_ship_date: Option<String>,
}

/// One Ingram purchase order, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseOrder {
    pub po_number: String,
    /// `YYYY-MM-DD` (UTC date of `ingramPurchaseOrderDate`).
    pub po_date: Option<String>,
    pub reseller_order_number: String,
    /// Lower-cased, e.g. `im::commercial`.
    pub order_type: String,
    pub vendor_quote_number: Option<String>,
    pub payment_terms_days: Option<u32>,
    pub currency: Option<String>,
    pub special_bid_number: Option<String>,
    pub ship_via: Option<String>,
    pub requested_delivery_date: Option<String>,
    pub notes: Option<String>,
    pub ship_to: Option<Address>,
    pub bill_to: Option<Address>,
    pub end_user: Option<Address>,
    pub reseller: Option<Address>,
    pub lines: Vec<OrderLine>,
}

impl PurchaseOrder {
    /// Sum of quantity × unit price over lines that have a price.
    pub fn total(&self) -> Amount {
        self.lines
            .iter()
            .filter_map(|l| l.unit_price.map(|p| p.times(l.quantity)))
            .fold(Amount::zero(), Amount::plus)
    }
}

/// Which Ingram API a job calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallKind {
    /// Purchase Order Response (from an 855); delivered before a PO's Status calls.
    PoResponse,
    /// Purchase Order Status (from an 856).
    PoStatus,
}

impl CallKind {
    /// The call in the README's words: `PO Response (855)`, `PO Status (856)`.
    pub fn label(self) -> &'static str {
        match self {
            CallKind::PoResponse => "PO Response (855)",
            CallKind::PoStatus => "PO Status (856)",
        }
    }

    /// The call's name in the README's words (`PO Response`, `PO Status`), for operators.
    pub fn describe(self) -> &'static str {
        match self {
            CallKind::PoResponse => "PO Response",
            CallKind::PoStatus => "PO Status",
        }
    }
}

impl std::fmt::Display for CallKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// A fresh correlation id for one queued call, sent on each of its attempts (Ingram's
/// `IM-CorrelationID`): a UUID v4 without hyphens (32 hex characters).
pub fn new_correlation_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
