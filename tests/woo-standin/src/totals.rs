//! Order totals with `rust_decimal`, the way WooCommerce computes them for a shop whose prices
//! are entered gross (`prices_include_tax = true`, the default) or net:
//!
//! * amounts are kept in the shop's minor unit, 10^-dp where dp is the shop's price decimals
//!   (`woocommerce_price_num_decimals`, 2 by default; WooCommerce's `wc_add_number_precision`):
//!   what the rules below call "cents" and "rounded to 2 decimals" follows that setting;
//! * line base = unit price × quantity, rounded to 2 decimals;
//! * coupons apply to the base in cents: `percent` floors each line's share and hands the missing
//!   cents out one by one; `fixed_cart` splits the amount in proportion to the lines, the same
//!   way; `fixed_product` is amount × quantity; a line never goes below 0; coupons are not
//!   sequential (each one is computed on the undiscounted base);
//! * gross prices: tax = round(gross × r / (100 + r), 2), net = gross − tax, per line, once for
//!   the subtotal (before discount) and once for the total (after);
//! * net prices: tax = round(net × r / 100, 2) per line;
//! * shipping and fees are net (WooCommerce asks for them excluding tax) and taxed per line;
//! * `total = Σ line totals + Σ fee totals + shipping_total + total_tax`.

use rust_decimal::Decimal;
use rust_decimal::RoundingStrategy;

use crate::tax::TaxRate;

/// One product line.
#[derive(Debug, Clone)]
pub struct LineIn {
    pub unit_price: Decimal,
    pub qty: i64,
    pub rate: TaxRate,
    pub taxable: bool,
}

/// One coupon.
#[derive(Debug, Clone)]
pub struct CouponIn {
    /// `percent`, `fixed_cart` or `fixed_product`.
    pub kind: String,
    pub amount: Decimal,
}

/// A net charge (shipping line or fee).
#[derive(Debug, Clone)]
pub struct ChargeIn {
    pub total: Decimal,
    pub rate: TaxRate,
    pub taxable: bool,
}

/// Computed amounts of one line.
#[derive(Debug, Clone, PartialEq)]
pub struct LineOut {
    pub subtotal: Decimal,
    pub subtotal_tax: Decimal,
    pub total: Decimal,
    pub total_tax: Decimal,
}

/// Computed amounts of a charge.
#[derive(Debug, Clone, PartialEq)]
pub struct ChargeOut {
    pub total: Decimal,
    pub tax: Decimal,
}

/// One tax line.
#[derive(Debug, Clone, PartialEq)]
pub struct TaxOut {
    pub rate: TaxRate,
    pub tax_total: Decimal,
    pub shipping_tax_total: Decimal,
}

/// Everything an order needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Totals {
    pub lines: Vec<LineOut>,
    /// `(discount, discount_tax)` per coupon.
    pub coupons: Vec<(Decimal, Decimal)>,
    pub shipping: Vec<ChargeOut>,
    pub fees: Vec<ChargeOut>,
    pub tax_lines: Vec<TaxOut>,
    pub discount_total: Decimal,
    pub discount_tax: Decimal,
    pub shipping_total: Decimal,
    pub shipping_tax: Decimal,
    pub cart_tax: Decimal,
    pub total_tax: Decimal,
    pub total: Decimal,
}

/// The shop's price decimals (`woocommerce_price_num_decimals`): every amount is rounded to
/// them, half away from zero (PHP `round`), and coupon shares are split in their minor unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Precision(pub u32);

impl Default for Precision {
    fn default() -> Self {
        Precision(2)
    }
}

impl Precision {
    pub fn round(self, d: Decimal) -> Decimal {
        d.round_dp_with_strategy(self.0, RoundingStrategy::MidpointAwayFromZero)
    }

    /// `12.5` → `"12.50"` (or `"12.500"` with 3 decimals).
    pub fn money(self, d: Decimal) -> String {
        format!("{:.*}", self.0 as usize, self.round(d))
    }

    fn scale(self) -> Decimal {
        Decimal::from(10i64.pow(self.0))
    }

    /// The amount in minor units ("cents").
    fn units(self, d: Decimal) -> i64 {
        let c = self.round(d) * self.scale();
        rust_decimal::prelude::ToPrimitive::to_i64(&c.trunc()).unwrap_or(0)
    }

    fn amount_of_units(self, c: i64) -> Decimal {
        Decimal::new(c, self.0)
    }

    /// Tax contained in a gross amount.
    fn inclusive_tax(self, gross: Decimal, pct: Decimal) -> Decimal {
        if pct.is_zero() {
            return Decimal::ZERO;
        }
        self.round(gross * pct / (Decimal::ONE_HUNDRED + pct))
    }

    /// Tax on a net amount.
    fn exclusive_tax(self, net: Decimal, pct: Decimal) -> Decimal {
        self.round(net * pct / Decimal::ONE_HUNDRED)
    }
}

/// Splits `amount_cents` over `weights` (cents) proportionally, flooring and handing the
/// remainder out one cent at a time, never above `caps`.
fn split_cents(amount_cents: i64, weights: &[i64], caps: &[i64]) -> Vec<i64> {
    let sum: i64 = weights.iter().sum();
    let mut out = vec![0i64; weights.len()];
    if sum <= 0 || amount_cents <= 0 {
        return out;
    }
    let amount = amount_cents.min(caps.iter().sum());
    for (i, w) in weights.iter().enumerate() {
        let share = i128::from(amount) * i128::from(*w) / i128::from(sum);
        out[i] = i64::try_from(share).unwrap_or(0).min(caps[i]);
    }
    let mut left = amount - out.iter().sum::<i64>();
    while left > 0 {
        let mut moved = false;
        for i in 0..out.len() {
            if left > 0 && out[i] < caps[i] && weights[i] > 0 {
                out[i] += 1;
                left -= 1;
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
    out
}

/// Computes all order amounts.
pub fn compute(
    lines: &[LineIn],
    coupons: &[CouponIn],
    shipping: &[ChargeIn],
    fees: &[ChargeIn],
    prices_include_tax: bool,
    dp: Precision,
) -> Totals {
    let base: Vec<i64> = lines
        .iter()
        .map(|l| dp.units(l.unit_price * Decimal::from(l.qty)))
        .collect();
    let mut disc: Vec<i64> = vec![0; lines.len()];
    let mut coupon_line_discounts: Vec<Vec<i64>> = Vec::new();
    for c in coupons {
        let caps: Vec<i64> = base
            .iter()
            .zip(&disc)
            .map(|(b, d)| (b - d).max(0))
            .collect();
        let this: Vec<i64> = match c.kind.as_str() {
            "percent" => {
                let pct = c.amount.min(Decimal::ONE_HUNDRED).max(Decimal::ZERO);
                let mut per: Vec<i64> = base
                    .iter()
                    .zip(&caps)
                    .map(|(b, cap)| {
                        let d = (Decimal::from(*b) * pct / Decimal::ONE_HUNDRED).floor();
                        rust_decimal::prelude::ToPrimitive::to_i64(&d)
                            .unwrap_or(0)
                            .min(*cap)
                    })
                    .collect();
                let target_dec = dp
                    .round(Decimal::from(base.iter().sum::<i64>()) * pct / Decimal::ONE_HUNDRED)
                    .round();
                let target = rust_decimal::prelude::ToPrimitive::to_i64(&target_dec).unwrap_or(0);
                let mut left = target - per.iter().sum::<i64>();
                for i in 0..per.len() {
                    if left <= 0 {
                        break;
                    }
                    if per[i] < caps[i] {
                        per[i] += 1;
                        left -= 1;
                    }
                }
                per
            }
            "fixed_product" => lines
                .iter()
                .zip(&caps)
                .map(|(l, cap)| dp.units(c.amount * Decimal::from(l.qty)).min(*cap))
                .collect(),
            _ => split_cents(dp.units(c.amount), &base, &caps),
        };
        for (d, t) in disc.iter_mut().zip(&this) {
            *d += t;
        }
        coupon_line_discounts.push(this);
    }

    let tax_of = |amount: Decimal, l: &LineIn| {
        if !l.taxable {
            Decimal::ZERO
        } else if prices_include_tax {
            dp.inclusive_tax(amount, l.rate.percent)
        } else {
            dp.exclusive_tax(amount, l.rate.percent)
        }
    };
    let mut outs = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let b = dp.amount_of_units(base[i]);
        let after = dp.amount_of_units(base[i] - disc[i]);
        let subtotal_tax = tax_of(b, l);
        let total_tax = tax_of(after, l);
        let (subtotal, total) = if prices_include_tax {
            (b - subtotal_tax, after - total_tax)
        } else {
            (b, after)
        };
        outs.push(LineOut {
            subtotal,
            subtotal_tax,
            total,
            total_tax,
        });
    }

    let coupons_out: Vec<(Decimal, Decimal)> = coupon_line_discounts
        .iter()
        .map(|per| {
            let mut d = Decimal::ZERO;
            let mut t = Decimal::ZERO;
            for (i, c) in per.iter().enumerate() {
                let gross_or_net = dp.amount_of_units(*c);
                let tax = tax_of(gross_or_net, &lines[i]);
                if prices_include_tax {
                    d += gross_or_net - tax;
                } else {
                    d += gross_or_net;
                }
                t += tax;
            }
            (d, t)
        })
        .collect();

    let charge = |c: &ChargeIn| ChargeOut {
        total: dp.round(c.total),
        tax: if c.taxable {
            dp.exclusive_tax(dp.round(c.total), c.rate.percent)
        } else {
            Decimal::ZERO
        },
    };
    let ship_out: Vec<ChargeOut> = shipping.iter().map(charge).collect();
    let fee_out: Vec<ChargeOut> = fees.iter().map(charge).collect();

    let mut tax_lines: Vec<TaxOut> = Vec::new();
    let mut add_tax = |rate: &TaxRate, cart: Decimal, ship: Decimal| {
        if let Some(t) = tax_lines.iter_mut().find(|t| t.rate.id == rate.id) {
            t.tax_total += cart;
            t.shipping_tax_total += ship;
        } else {
            tax_lines.push(TaxOut {
                rate: rate.clone(),
                tax_total: cart,
                shipping_tax_total: ship,
            });
        }
    };
    for (l, o) in lines.iter().zip(&outs) {
        if l.taxable {
            add_tax(&l.rate, o.total_tax, Decimal::ZERO);
        }
    }
    for (f, o) in fees.iter().zip(&fee_out) {
        if f.taxable {
            add_tax(&f.rate, o.tax, Decimal::ZERO);
        }
    }
    for (s, o) in shipping.iter().zip(&ship_out) {
        if s.taxable {
            add_tax(&s.rate, Decimal::ZERO, o.tax);
        }
    }
    tax_lines.sort_by_key(|t| t.rate.id);

    let sum = |it: &mut dyn Iterator<Item = Decimal>| it.fold(Decimal::ZERO, |a, b| a + b);
    let discount_total = sum(&mut outs.iter().map(|o| o.subtotal - o.total));
    let discount_tax = sum(&mut outs.iter().map(|o| o.subtotal_tax - o.total_tax));
    let shipping_total = sum(&mut ship_out.iter().map(|s| s.total));
    let shipping_tax = sum(&mut ship_out.iter().map(|s| s.tax));
    let cart_tax =
        sum(&mut outs.iter().map(|o| o.total_tax)) + sum(&mut fee_out.iter().map(|f| f.tax));
    let total_tax = cart_tax + shipping_tax;
    let total = sum(&mut outs.iter().map(|o| o.total))
        + sum(&mut fee_out.iter().map(|f| f.total))
        + shipping_total
        + total_tax;
    Totals {
        lines: outs,
        coupons: coupons_out,
        shipping: ship_out,
        fees: fee_out,
        tax_lines,
        discount_total,
        discount_tax,
        shipping_total,
        shipping_tax,
        cart_tax,
        total_tax,
        total,
    }
}
