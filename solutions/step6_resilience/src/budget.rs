//! A budget for hedges: extra load is allowed, but only so much.
//!
//! Hedging trades extra requests for a shorter tail. Without a cap, that
//! trade turns against you exactly when it matters: when an upstream slows
//! down for everyone, every request passes the hedge delay, every request
//! sends a backup, and the slow upstream gets twice the load. A budget makes
//! the extra load a fixed share of the normal load, whatever happens.
//!
//! This is a token bucket: every request deposits `ratio` of a token (0.1
//! for "at most 10 % extra"), every hedge withdraws a whole token, and the
//! bucket holds at most `burst` tokens so a quiet hour cannot be saved up
//! for one enormous burst. Over any stretch of time, hedges ≤ `ratio` ×
//! requests + `burst`. It is the idea of Finagle's `RetryBudget` and of
//! tower's `retry::budget::TpsBudget`, which is modelled on it; both also
//! let deposits expire after a time-to-live and add a floor of retries per
//! second, which this bucket leaves out. (Envoy's retry budget is another
//! shape: a limit on *concurrent* retries, as a share of the requests active
//! at the moment.)
//!
//! Given: this whole file; there is nothing to write in it.
//!
//! Given code: a copy of `steps/step6_resilience/src/budget.rs`.

use std::sync::Mutex;

use crate::error::ConfigError;

/// A token bucket that lets through at most `ratio` hedges per request.
#[derive(Debug)]
pub struct HedgeBudget {
    ratio: f64,
    burst: f64,
    tokens: Mutex<f64>,
}

impl HedgeBudget {
    /// An empty budget: each request adds `ratio` (0.0 to 1.0) of a hedge,
    /// and at most `burst` (at least 1.0) hedges can be saved up.
    ///
    /// # Errors
    ///
    /// [`ConfigError::BudgetRatioOutOfRange`] or
    /// [`ConfigError::BudgetBurstTooSmall`].
    pub fn new(ratio: f64, burst: f64) -> Result<Self, ConfigError> {
        if !(0.0..=1.0).contains(&ratio) {
            return Err(ConfigError::BudgetRatioOutOfRange(ratio));
        }
        // `!(x >= 1.0)` rather than `x < 1.0`, so NaN is rejected too.
        if !(burst >= 1.0 && burst.is_finite()) {
            return Err(ConfigError::BudgetBurstTooSmall(burst));
        }
        Ok(HedgeBudget {
            ratio,
            burst,
            tokens: Mutex::new(0.0),
        })
    }

    /// Records one request: adds `ratio` of a token, up to `burst`.
    pub fn deposit(&self) {
        let mut tokens = self.lock();
        *tokens = (*tokens + self.ratio).min(self.burst);
    }

    /// Takes one token for a hedge; `false` if the budget is spent.
    pub fn try_withdraw(&self) -> bool {
        let mut tokens = self.lock();
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, f64> {
        self.tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
