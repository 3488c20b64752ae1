//! One budget per upstream for every extra attempt: retries and hedges.
//!
//! Retries and hedges both trade extra requests for a better answer: a retry
//! for an error that may pass, a hedge for an answer that is late. Without a
//! cap, both turn against you exactly when it matters: when an upstream
//! fails or slows down for everyone, every section retries and every section
//! hedges, and the sick upstream gets two or three times its normal load. A
//! budget makes the extra load a fixed share of the normal load, whatever
//! happens; and *one* budget for both kinds keeps them from adding up (10 %
//! of retries plus 10 % of hedges would be 20 %).
//!
//! This is a token bucket: every section call deposits `ratio` of a token
//! (0.1 for "at most 10 % extra"), every extra attempt withdraws a whole
//! token, and the bucket holds at most `burst` tokens so a quiet hour cannot
//! be saved up for one enormous burst. Over any stretch of time, extra
//! attempts ≤ `ratio` × section calls + `burst`. That bound holds only if
//! the deposit is made once per *section call*, by the caller that starts
//! it ([`ProductService::fetch`]): if each attempt deposited, a retry would
//! pay for itself.
//!
//! It is the idea of Finagle's `RetryBudget` and of tower's
//! `retry::budget::TpsBudget`, which is modelled on it; both also let
//! deposits expire after a time-to-live and add a floor of retries per
//! second, which this bucket leaves out. (Envoy's retry budget is another
//! shape: a limit on *concurrent* retries, as a share of the requests active
//! at the moment.)
//!
//! Tokens are counted in millionths, in whole numbers: ten deposits of 0.1
//! make exactly one token (in `f64`, ten additions of 0.1 fall just short of
//! 1.0, and the tenth call would find no token).
//!
//! Given: this whole file; there is nothing to write in it.
//!
//! [`ProductService::fetch`]: crate::service::ProductService::fetch
//!
//! Given code: a copy of `steps/step6_resilience/src/budget.rs`.

use std::sync::Mutex;

use crate::error::ConfigError;

/// One token, in the bucket's units (millionths).
const TOKEN: u64 = 1_000_000;

/// How large the budget of one upstream's extra attempts is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetConfig {
    /// Extra attempts each section call pays for, 0.0 to 1.0 (0.1 = at most
    /// 10 % more requests than sections).
    pub ratio: f64,
    /// How many extra attempts can be saved up (at least 1.0): what a burst
    /// of failures may spend before the ratio bites.
    pub burst: f64,
}

/// A token bucket that lets through at most `ratio` extra attempts per
/// section call, plus `burst`.
#[derive(Debug)]
pub struct RetryBudget {
    deposit: u64,
    capacity: u64,
    tokens: Mutex<u64>,
}

impl RetryBudget {
    /// An empty budget: each section call adds `config.ratio` of a token,
    /// and at most `config.burst` tokens can be saved up.
    ///
    /// # Errors
    ///
    /// [`ConfigError::BudgetRatioOutOfRange`] or
    /// [`ConfigError::BudgetBurstTooSmall`].
    pub fn new(config: BudgetConfig) -> Result<Self, ConfigError> {
        let BudgetConfig { ratio, burst } = config;
        if !(0.0..=1.0).contains(&ratio) {
            return Err(ConfigError::BudgetRatioOutOfRange(ratio));
        }
        // `!(x >= 1.0)` rather than `x < 1.0`, so NaN is rejected too.
        if !(burst >= 1.0 && burst.is_finite()) {
            return Err(ConfigError::BudgetBurstTooSmall(burst));
        }
        // Both are checked above, so the products fit in a `u64`.
        let in_units = |tokens: f64| (tokens * TOKEN as f64).round() as u64;
        Ok(RetryBudget {
            deposit: in_units(ratio),
            capacity: in_units(burst),
            tokens: Mutex::new(0),
        })
    }

    /// Records one section call: adds `ratio` of a token, up to `burst`.
    pub fn deposit(&self) {
        let mut tokens = self.lock();
        *tokens = (*tokens + self.deposit).min(self.capacity);
    }

    /// Takes one token for an extra attempt; `false` if the budget is spent.
    pub fn try_withdraw(&self) -> bool {
        let mut tokens = self.lock();
        if *tokens >= TOKEN {
            *tokens -= TOKEN;
            true
        } else {
            false
        }
    }

    /// The whole tokens in the bucket right now (what the next extra
    /// attempts may spend).
    pub fn tokens(&self) -> u64 {
        *self.lock() / TOKEN
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, u64> {
        self.tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
