//! The three upstream services and what they answer.
//!
//! Bodies are computed from the product id alone, with no randomness and no
//! state, so a test can predict the exact merged product for any id, and the
//! wiremock fixtures and the fast fake cannot drift apart: both call
//! [`Service::body`].

use std::fmt;

use serde_json::{Value, json};

/// The body a misbehaving upstream sends with `200 OK` and
/// `content-type: application/json`.
///
/// It looks like the start of a JSON object but is cut off, as when a proxy
/// or a crashed process truncates a response. Decoding it must fail, and a
/// client must report that as a decode error, not as a success or a
/// transport error.
pub const GARBAGE_BODY: &str = r#"{"product_id": 42, "in_sto"#;

/// One of the three upstream services the product endpoint fans out to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// Stock levels: how many items are in stock, and where.
    Inventory,
    /// The price, in cents, and its currency.
    Pricing,
    /// Review statistics: average stars and how many reviews.
    Reviews,
}

impl Service {
    /// All three services, in the order the product endpoint lists them.
    pub const ALL: [Service; 3] = [Service::Inventory, Service::Pricing, Service::Reviews];

    /// The service's name, also the first segment of its URL path:
    /// `"inventory"`, `"pricing"` or `"reviews"`.
    pub fn name(self) -> &'static str {
        match self {
            Service::Inventory => "inventory",
            Service::Pricing => "pricing",
            Service::Reviews => "reviews",
        }
    }

    /// The URL path that asks this service about one product, e.g.
    /// `"/inventory/42"`. Append it to a base URL such as
    /// `"http://127.0.0.1:8080"`.
    pub fn path(self, product_id: u64) -> String {
        format!("/{}/{product_id}", self.name())
    }

    /// The JSON body this service answers for `product_id`.
    ///
    /// Deterministic: the same id always gives the same body.
    ///
    /// - inventory: `{"product_id", "in_stock": (id * 7) % 50, "warehouse": "ams-1"}`
    /// - pricing: `{"product_id", "amount_cents": 999 + (id % 100) * 100, "currency": "EUR"}`
    /// - reviews: `{"product_id", "average_stars": 3.0 + (id % 5) * 0.5, "count": (id * 13) % 500}`
    pub fn body(self, product_id: u64) -> Value {
        // Reduce the id *before* multiplying: `(id % m) * k % m` equals
        // `(id * k) % m`, and cannot overflow even for `u64::MAX`.
        match self {
            Service::Inventory => json!({
                "product_id": product_id,
                "in_stock": (product_id % 50) * 7 % 50,
                "warehouse": "ams-1",
            }),
            Service::Pricing => json!({
                "product_id": product_id,
                "amount_cents": 999 + (product_id % 100) * 100,
                "currency": "EUR",
            }),
            Service::Reviews => json!({
                "product_id": product_id,
                // `id % 5` is below 5, so the cast to f64 is exact.
                "average_stars": 3.0 + (product_id % 5) as f64 * 0.5,
                "count": (product_id % 500) * 13 % 500,
            }),
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Reads the product id from the last segment of a request path.
///
/// Only plain ASCII digits that fit a `u64` are an id. `str::parse::<u64>`
/// alone would also accept `"+42"`; the fakes answer `404` for anything that is
/// not digits, as a real service would for an unknown resource.
pub fn parse_product_id(segment: &str) -> Option<u64> {
    if segment.is_empty() || !segment.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    segment.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduced_arithmetic_matches_the_documented_formulas() {
        for id in [0_u64, 1, 7, 42, 99, 100, 12_345, 1_000_003] {
            assert_eq!(Service::Inventory.body(id)["in_stock"], (id * 7) % 50);
            assert_eq!(Service::Reviews.body(id)["count"], (id * 13) % 500);
        }
    }

    #[test]
    fn the_largest_id_does_not_overflow() {
        let body = Service::Inventory.body(u64::MAX);

        assert_eq!(body["product_id"], u64::MAX);
    }

    #[test]
    fn parse_product_id_accepts_only_plain_digits() {
        assert_eq!(parse_product_id("42"), Some(42));
        assert_eq!(parse_product_id("007"), Some(7));
        assert_eq!(parse_product_id("+42"), None);
        assert_eq!(parse_product_id("-1"), None);
        assert_eq!(parse_product_id("4x"), None);
        assert_eq!(parse_product_id(""), None);
        assert_eq!(parse_product_id("99999999999999999999999"), None);
    }
}
