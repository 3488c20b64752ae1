//! Reading a product id from the URL: the service's first line of defence.
//!
//! `Path<u64>` would reject bad ids too, but with axum's own plain-text
//! `400`. Taking the segment as a string and checking it here means a bad id
//! becomes a typed error, and so a problem document like every other error.

use std::fmt;

// GIVEN: invalid_product_id (given code, the same as in the reference solution)
/// The longest id accepted, in characters. Every 19-digit number fits a
/// `u64` (whose maximum has 20 digits), so a valid id can never overflow.
pub const MAX_PRODUCT_ID_LEN: usize = 19;

/// Why a path segment is not a product id.
///
/// Neither variant keeps the segment itself: its text goes into the problem
/// document the client gets, and a service should not echo what a caller
/// sent back at it (the request's span logs the path for the operator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidProductId {
    /// Something other than ASCII digits, e.g. `abc`, `-1` or `+42`, or a
    /// segment that is not even valid UTF-8 once percent-decoded.
    NotANumber,
    /// More than [`MAX_PRODUCT_ID_LEN`] characters.
    TooLong {
        /// How many characters it had.
        len: usize,
    },
}

impl fmt::Display for InvalidProductId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidProductId::NotANumber => {
                write!(
                    f,
                    "the product id is not a number: only the digits 0-9 are allowed"
                )
            }
            InvalidProductId::TooLong { len } => write!(
                f,
                "the product id is {len} characters long; at most {MAX_PRODUCT_ID_LEN} are allowed"
            ),
        }
    }
}

impl std::error::Error for InvalidProductId {}
// GIVEN_END: invalid_product_id

// ANCHOR: parse_product_id
/// Parses a product id: 1 to [`MAX_PRODUCT_ID_LEN`] ASCII digits.
///
/// # Errors
///
/// [`InvalidProductId::TooLong`] for more than [`MAX_PRODUCT_ID_LEN`]
/// characters, whatever they are (the length is checked first, and `len` is
/// the whole input's length in characters, not where counting could have
/// stopped); [`InvalidProductId::NotANumber`] for anything else
/// that is not plain ASCII digits: an empty string, `+42` (which Rust's own
/// `u64` parser would accept), a space before or after (nothing is
/// trimmed), or the digits of another script, such as `٤٢` or `４２` (which
/// `char::is_numeric` would accept).
pub fn parse_product_id(raw: &str) -> Result<u64, InvalidProductId> {
    let len = raw.chars().count();
    if len > MAX_PRODUCT_ID_LEN {
        return Err(InvalidProductId::TooLong { len });
    }
    // `str::parse::<u64>` alone would also accept "+42".
    if raw.is_empty() || !raw.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(InvalidProductId::NotANumber);
    }
    // At most 19 digits always fits a u64, so this cannot fail.
    raw.parse().map_err(|_| InvalidProductId::NotANumber)
}
// ANCHOR_END: parse_product_id
