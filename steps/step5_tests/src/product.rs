//! What the three upstreams send, and the response the service returns.
//!
//! Each upstream answers with its own small JSON document; serde ignores the
//! fields we do not declare (such as `product_id`). The response is what
//! clients of `GET /products/{id}` depend on: its JSON shape is a contract,
//! which is why this step has a snapshot test for it.

use serde::{Deserialize, Serialize};

use crate::upstream::Upstream;

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

/// The answer to `GET /products/{id}`.
///
/// Inventory and price are required: without them there is no product page.
/// Reviews are optional: when the reviews upstream fails, the page is still
/// served, with `reviews: null` and `"reviews"` listed in `degraded`, so a
/// client can tell "no reviews" from "reviews unavailable".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProductResponse {
    /// A fresh id per request, for correlating logs; different every time,
    /// which is why the contract test redacts it.
    pub request_id: String,
    /// The product asked for.
    pub id: u64,
    /// From the inventory service.
    pub inventory: Inventory,
    /// From the pricing service.
    pub price: Price,
    /// From the reviews service, or `None` when it failed.
    pub reviews: Option<ReviewStats>,
    /// The optional upstreams that failed, so this answer is partial.
    pub degraded: Vec<Upstream>,
}
