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

/// Products and variations by id, with the lookups WooCommerce's database indexes give it (the
/// `_sku` meta lookup table, `post_name`): finding a SKU or a slug must not scan the catalogue, or
/// a 100,000-product shop becomes quadratic to seed and to sync against.
#[derive(Debug, Clone, Default)]
pub struct Products {
    by_id: BTreeMap<u64, Product>,
    ids_by_sku: HashMap<String, BTreeSet<u64>>,
    ids_by_slug: HashMap<String, BTreeSet<u64>>,
}

impl Deref for Products {
    type Target = BTreeMap<u64, Product>;
    fn deref(&self) -> &Self::Target {
        &self.by_id
    }
}

impl Products {
    pub fn insert(&mut self, id: u64, product: Product) -> Option<Product> {
        index(&mut self.ids_by_sku, id, &product.sku);
        index(&mut self.ids_by_slug, id, &product.slug);
        let old = self.by_id.insert(id, product);
        if let (Some(old), Some(new)) = (&old, self.by_id.get(&id)) {
            if new.sku != old.sku {
                unindex(&mut self.ids_by_sku, id, &old.sku);
            }
            if new.slug != old.slug {
                unindex(&mut self.ids_by_slug, id, &old.slug);
            }
        }
        old
    }

    pub fn remove(&mut self, id: &u64) -> Option<Product> {
        let old = self.by_id.remove(id);
        if let Some(old) = &old {
            unindex(&mut self.ids_by_sku, *id, &old.sku);
            unindex(&mut self.ids_by_slug, *id, &old.slug);
        }
        old
    }

    /// For changes that keep the SKU and slug (stock, variations list, dates); a change of
    /// either goes through [`Products::insert`] so the lookups follow it.
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

    /// Whether a product or variation other than `id` has this slug.
    pub fn slug_taken(&self, slug: &str, id: u64) -> bool {
        self.ids_by_slug
            .get(slug)
            .is_some_and(|ids| ids.iter().any(|other| *other != id))
    }
}

fn index(lookup: &mut HashMap<String, BTreeSet<u64>>, id: u64, key: &str) {
    if !key.is_empty() {
        lookup.entry(key.to_string()).or_default().insert(id);
    }
}

fn unindex(lookup: &mut HashMap<String, BTreeSet<u64>>, id: u64, key: &str) {
    if let Some(ids) = lookup.get_mut(key) {
        ids.remove(&id);
        if ids.is_empty() {
            lookup.remove(key);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SiteClock;

    fn product(id: u64, sku: &str, slug: &str) -> Product {
        let mut p = Product::blank(id, &SiteClock::new(60));
        p.sku = sku.into();
        p.slug = slug.into();
        p
    }

    #[test]
    fn the_sku_and_slug_lookups_follow_inserts_changes_trash_and_removal() {
        let mut products = Products::default();
        products.insert(10, product(10, "KAWA-1", "kawa"));
        products.insert(11, product(11, "HERBATA-1", "herbata"));
        assert_eq!(products.ids_with_sku("KAWA-1").collect::<Vec<_>>(), [10]);
        assert!(products.slug_taken("kawa", 11));
        assert!(
            !products.slug_taken("kawa", 10),
            "its own slug is not taken"
        );

        // A SKU and slug change moves the entries.
        products.insert(10, product(10, "KAWA-2", "kawa-ziarnista"));
        assert_eq!(products.ids_with_sku("KAWA-1").count(), 0);
        assert_eq!(products.ids_with_sku("KAWA-2").collect::<Vec<_>>(), [10]);
        assert!(!products.slug_taken("kawa", 11));
        assert!(products.slug_taken("kawa-ziarnista", 11));

        // Trashed: still indexed for `status=trash`, not found by the SKU lookup.
        let mut trashed = product(11, "HERBATA-1", "herbata");
        trashed.status = "trash".into();
        products.insert(11, trashed);
        assert_eq!(products.ids_with_sku("HERBATA-1").count(), 0);
        assert_eq!(
            products
                .ids_with_sku_any_status("HERBATA-1")
                .collect::<Vec<_>>(),
            [11]
        );

        products.remove(&10);
        assert_eq!(products.ids_with_sku_any_status("KAWA-2").count(), 0);
        assert!(!products.slug_taken("kawa-ziarnista", 99));

        // Loaded from a state file: the lookups are rebuilt.
        let json = serde_json::to_string(&products).unwrap_or_default();
        let loaded: Products = serde_json::from_str(&json).unwrap_or_default();
        assert_eq!(loaded.len(), 1);
        assert_eq!(
            loaded
                .ids_with_sku_any_status("HERBATA-1")
                .collect::<Vec<_>>(),
            [11]
        );
        assert!(loaded.slug_taken("herbata", 12));
    }
}
