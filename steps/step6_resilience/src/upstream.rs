//! The three upstream services and where to find them.
//!
//! Given: this whole file; there is nothing to write in it.

use std::fmt;

use serde::Serialize;

/// One of the services the product page depends on.
///
/// Every error carries one of these, so a failure always says *which*
/// dependency broke. It serialises as its lowercase name (`"reviews"`), which
/// is how a degraded page lists the sections it is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Upstream {
    /// Stock levels. Required: no page without them.
    Inventory,
    /// Prices. Required: no page without them.
    Pricing,
    /// Ratings. Optional: a page without them is still worth showing.
    Reviews,
}

impl Upstream {
    /// All three, in the order the page lists them.
    pub const ALL: [Upstream; 3] = [Upstream::Inventory, Upstream::Pricing, Upstream::Reviews];

    /// The service's name, which is also the first segment of its URL path.
    pub fn name(self) -> &'static str {
        match self {
            Upstream::Inventory => "inventory",
            Upstream::Pricing => "pricing",
            Upstream::Reviews => "reviews",
        }
    }
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Base URLs of the three services, e.g. `http://127.0.0.1:8081`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamUrls {
    /// Base URL of the inventory service.
    pub inventory: String,
    /// Base URL of the pricing service.
    pub pricing: String,
    /// Base URL of the reviews service.
    pub reviews: String,
}

impl UpstreamUrls {
    /// The URL that answers for `product_id` on `upstream`, e.g.
    /// `http://127.0.0.1:8081/pricing/42`.
    pub fn url(&self, upstream: Upstream, product_id: u64) -> String {
        let base = match upstream {
            Upstream::Inventory => &self.inventory,
            Upstream::Pricing => &self.pricing,
            Upstream::Reviews => &self.reviews,
        };
        format!(
            "{}/{}/{product_id}",
            base.trim_end_matches('/'),
            upstream.name()
        )
    }
}
