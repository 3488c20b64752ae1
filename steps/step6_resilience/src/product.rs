//! What the three upstreams send, and the product page built from them.
//!
//! The page is where "degrade, don't collapse" becomes visible to the client:
//! an optional section that could not be fetched is `null`, and its name is
//! listed under `degraded`, so the client (and a dashboard) can tell a page
//! with no reviews from a page whose reviews service was down.
//!
//! Yours to write: [`ProductPage::assemble`]. Given: the rest of this file.

use serde::{Deserialize, Serialize};

use crate::error::FetchError;
use crate::upstream::Upstream;

// GIVEN: payloads (given code, the same as in the reference solution)
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
    /// The price in the currency's smallest unit.
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

/// The product page: the required sections always, the optional ones when
/// they could be fetched.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProductPage {
    /// The product asked for.
    pub id: u64,
    /// From the inventory service (required).
    pub inventory: Inventory,
    /// From the pricing service (required).
    pub price: Price,
    /// From the reviews service (optional): `None` when it failed.
    pub reviews: Option<ReviewStats>,
    /// The optional sections that are missing because fetching them failed
    /// (with any error), e.g. `["reviews"]`. Empty on a complete page.
    pub degraded: Vec<Upstream>,
}
// GIVEN_END: payloads

impl ProductPage {
    /// Builds the page from the two required sections and the outcome of the
    /// optional one.
    ///
    /// A failed `reviews` does not fail the page: the page is served without
    /// reviews and lists `reviews` as degraded. Every error counts, a 4xx, an
    /// open breaker or a cancellation as much as a 5xx: the client cannot
    /// tell "no reviews" from an error it did not see. The error itself is
    /// dropped here; the service logs and counts it where it happened. A
    /// product with no reviews yet (`count == 0`) is an answer, not a failure:
    /// its page is complete: the stats, and nothing listed as degraded.
    pub fn assemble(
        id: u64,
        inventory: Inventory,
        price: Price,
        reviews: Result<ReviewStats, FetchError>,
    ) -> ProductPage {
        todo!("ProductPage::assemble: a failed optional section degrades the page")
    }

    // GIVEN: is_degraded (given code, the same as in the reference solution)
    /// Whether any optional section is missing.
    pub fn is_degraded(&self) -> bool {
        !self.degraded.is_empty()
    }
    // GIVEN_END: is_degraded
}
