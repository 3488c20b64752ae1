//! What the three upstreams send, and the product page that merges them.
//!
//! Each upstream answers with its own small JSON document. Serde ignores fields
//! we do not declare (such as `product_id`), so each struct states only what
//! the product page uses.
//!
//! Given code: a copy of `steps/step1_baseline/src/product.rs`.

use serde::{Deserialize, Serialize};

/// The inventory service's answer: `GET /inventory/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    /// Units ready to ship.
    pub in_stock: u32,
    /// Where they are.
    pub warehouse: String,
}

/// The pricing service's answer: `GET /pricing/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Price {
    /// The price in the currency's smallest unit, so no float rounding creeps in.
    pub amount_cents: u64,
    /// An ISO 4217 code such as `EUR`.
    pub currency: String,
}

/// The reviews service's answer: `GET /reviews/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewStats {
    /// Mean rating, 1.0 to 5.0.
    pub average_stars: f64,
    /// How many reviews the mean is over.
    pub count: u32,
}

/// The product page: one answer built from all three upstreams.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    /// The product asked for.
    pub id: u64,
    /// From the inventory service.
    pub inventory: Inventory,
    /// From the pricing service.
    pub price: Price,
    /// From the reviews service.
    pub reviews: ReviewStats,
}
