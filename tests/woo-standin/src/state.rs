//! The shop: everything WooCommerce would keep in its database. Products, variations, orders and
//! coupons share WordPress's post id sequence, so ids are not contiguous per resource.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Deref;

use serde::{Deserialize, Serialize};

use crate::coupons::Coupon;
use crate::notes::OrderNote;
use crate::orders::Order;
use crate::products::{Product, TermRef};
use crate::refunds::Refund;
use crate::webhooks::WebhookRecord;

/// Something that happened to a resource; webhooks subscribe to `resource.event` topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub resource: &'static str,
    pub event: &'static str,
    pub id: u64,
}

impl Event {
    pub fn new(resource: &'static str, event: &'static str, id: u64) -> Self {
        Event {
            resource,
            event,
            id,
        }
    }
    pub fn topic(&self) -> String {
        format!("{}.{}", self.resource, self.event)
    }
}

/// The whole shop (this is what `--state FILE` persists).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ShopState {
    pub next_post_id: u64,
    pub next_item_id: u64,
    pub next_comment_id: u64,
    pub next_webhook_id: u64,
    /// Products and variations (`type: "variation"`) by id.
    pub products: Products,
    pub orders: BTreeMap<u64, Order>,
    /// Order notes by order id, oldest first.
    pub order_notes: BTreeMap<u64, Vec<OrderNote>>,
    /// Orders whose stock has been reduced (`_order_stock_reduced`).
    pub stock_reduced: BTreeSet<u64>,
    pub coupons: BTreeMap<u64, Coupon>,
    /// Refunds by order id, oldest first.
    pub refunds: BTreeMap<u64, Vec<Refund>>,
    pub webhooks: BTreeMap<u64, WebhookRecord>,
    pub categories: BTreeMap<u64, TermRef>,
    /// Parent of each category that has one (top-level ones are absent).
    pub category_parents: BTreeMap<u64, u64>,
    /// WordPress terms have their own id sequence.
    pub next_term_id: u64,
}

impl Default for ShopState {
    fn default() -> Self {
        let mut categories = BTreeMap::new();
        categories.insert(
            15,
            TermRef {
                id: 15,
                name: "Uncategorized".into(),
                slug: "uncategorized".into(),
            },
        );
        ShopState {
            next_post_id: 10,
            next_item_id: 1,
            next_comment_id: 1,
            next_webhook_id: 1,
            products: Products::default(),
            orders: BTreeMap::new(),
            order_notes: BTreeMap::new(),
            stock_reduced: BTreeSet::new(),
            coupons: BTreeMap::new(),
            refunds: BTreeMap::new(),
            webhooks: BTreeMap::new(),
            categories,
            category_parents: BTreeMap::new(),
            next_term_id: 16,
        }
    }
}

impl ShopState {
    pub fn alloc_post_id(&mut self) -> u64 {
        let id = self.next_post_id;
        self.next_post_id += 1;
        id
    }

    pub fn alloc_term_id(&mut self) -> u64 {
        let id = self.next_term_id.max(16);
        self.next_term_id = id + 1;
        id
    }

    pub fn alloc_item_id(&mut self) -> u64 {
        let id = self.next_item_id;
        self.next_item_id += 1;
        id
    }

    pub fn alloc_comment_id(&mut self) -> u64 {
        let id = self.next_comment_id;
        self.next_comment_id += 1;
        id
    }

    /// Product or variation id for a SKU (exact match; trashed products excluded).
    pub fn id_by_sku(&self, sku: &str) -> Option<u64> {
        self.products.ids_with_sku(sku).next()
    }
}

/// Products and variations by id, with the `_sku` lookup WooCommerce gets from its
/// `wc_product_meta_lookup` index: finding a SKU must not scan the catalogue, or a 100,000-product
/// shop becomes quadratic to seed and to sync against.
#[derive(Debug, Clone, Default)]
pub struct Products {
    by_id: BTreeMap<u64, Product>,
    ids_by_sku: HashMap<String, BTreeSet<u64>>,
}

impl Deref for Products {
    type Target = BTreeMap<u64, Product>;
    fn deref(&self) -> &Self::Target {
        &self.by_id
    }
}

impl Products {
    pub fn insert(&mut self, id: u64, product: Product) -> Option<Product> {
        self.index(id, &product.sku);
        let old = self.by_id.insert(id, product);
        if let Some(old) = &old
            && self.by_id.get(&id).is_some_and(|new| new.sku != old.sku)
        {
            self.unindex(id, &old.sku);
        }
        old
    }

    pub fn remove(&mut self, id: &u64) -> Option<Product> {
        let old = self.by_id.remove(id);
        if let Some(old) = &old {
            self.unindex(*id, &old.sku);
        }
        old
    }

    /// For changes that keep the SKU (stock, variations list, dates); a SKU change goes
    /// through [`Products::insert`] so the lookup follows it.
    pub fn get_mut(&mut self, id: &u64) -> Option<&mut Product> {
        self.by_id.get_mut(id)
    }

    /// Ids of the products and variations with exactly this SKU, not trashed, lowest first.
    pub fn ids_with_sku<'a>(&'a self, sku: &str) -> impl Iterator<Item = u64> + 'a {
        self.ids_with_sku_any_status(sku)
            .filter(|id| self.by_id.get(id).is_some_and(|p| p.status != "trash"))
    }

    /// Ids of the products and variations with exactly this SKU, trashed ones included.
    pub fn ids_with_sku_any_status<'a>(&'a self, sku: &str) -> impl Iterator<Item = u64> + 'a {
        let ids = if sku.is_empty() {
            None
        } else {
            self.ids_by_sku.get(sku)
        };
        ids.into_iter().flatten().copied()
    }

    fn index(&mut self, id: u64, sku: &str) {
        if !sku.is_empty() {
            self.ids_by_sku
                .entry(sku.to_string())
                .or_default()
                .insert(id);
        }
    }

    fn unindex(&mut self, id: u64, sku: &str) {
        if let Some(ids) = self.ids_by_sku.get_mut(sku) {
            ids.remove(&id);
            if ids.is_empty() {
                self.ids_by_sku.remove(sku);
            }
        }
    }
}

impl Serialize for Products {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.by_id.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Products {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let by_id = BTreeMap::<u64, Product>::deserialize(deserializer)?;
        let mut products = Products::default();
        for (id, product) in by_id {
            products.insert(id, product);
        }
        Ok(products)
    }
}

/// `sanitize_title`: lower case, Polish (and other Latin) accents removed, `-` separators.
pub fn slugify(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        let mapped = match c {
            'ą' => 'a',
            'ć' => 'c',
            'ę' => 'e',
            'ł' => 'l',
            'ń' => 'n',
            'ó' => 'o',
            'ś' => 's',
            'ź' | 'ż' => 'z',
            'ä' | 'à' | 'á' | 'â' => 'a',
            'ö' | 'ô' | 'ò' => 'o',
            'ü' | 'ú' | 'ù' => 'u',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'č' => 'c',
            'š' => 's',
            'ž' => 'z',
            c if c.is_ascii_alphanumeric() => c,
            _ => '-',
        };
        if mapped == '-' && (out.is_empty() || out.ends_with('-')) {
            continue;
        }
        out.push(mapped);
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}
