//! Reading a product id from the URL: the service's first line of defence.
//!
//! `Path<u64>` would reject bad ids too, but with axum's own plain-text
//! `400`. Taking the segment as a string and checking it here means a bad id
//! becomes a typed error, and so a problem document like every other error.

use std::fmt;

/// The longest id accepted, in characters. Every 19-digit number fits a
/// `u64` (whose maximum has 20 digits), so a valid id can never overflow.
pub const MAX_PRODUCT_ID_LEN: usize = 19;

/// Why a path segment is not a product id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidProductId {
    /// Something other than ASCII digits, e.g. `abc` or `-1`.
    NotANumber {
        /// The segment as it came in.
        raw: String,
    },
    /// More than [`MAX_PRODUCT_ID_LEN`] characters.
    TooLong {
        /// How many characters it had.
        len: usize,
    },
}

impl fmt::Display for InvalidProductId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidProductId::NotANumber { raw } => {
                write!(f, "product id {raw:?} is not a number")
            }
            InvalidProductId::TooLong { len } => write!(
                f,
                "product id is {len} characters long; at most {MAX_PRODUCT_ID_LEN} are allowed"
            ),
        }
    }
}

impl std::error::Error for InvalidProductId {}

/// Parses a product id: 1 to [`MAX_PRODUCT_ID_LEN`] ASCII digits.
///
/// # Errors
///
/// [`InvalidProductId::TooLong`] first (so a huge input is never echoed
/// back in full), then [`InvalidProductId::NotANumber`].
pub fn parse_product_id(raw: &str) -> Result<u64, InvalidProductId> {
    // TODO: check the length first (`raw.chars().count()` against
    // `MAX_PRODUCT_ID_LEN`: `TooLong`), then that `raw` is not empty and is
    // all ASCII digits (`raw.bytes().all(|byte| byte.is_ascii_digit())`:
    // otherwise `NotANumber`), then `raw.parse::<u64>()`. Why not `parse`
    // alone? It accepts "+42".
    todo!("parse_product_id: 1 to 19 ASCII digits, or an InvalidProductId")
}
