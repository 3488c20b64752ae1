//! [`PerUpstream`]: one value for each of the three upstreams, looked up by
//! [`Upstream`].
//!
//! A bulkhead keeps a semaphore per upstream, a service a set of metric
//! handles per upstream, a resilient client a breaker per upstream. Each
//! would otherwise hold three fields and a `match` from an [`Upstream`] to
//! the right one; this type writes that `match` once.
//!
//! Given: this whole file; there is nothing to write in it.
//!
//! Given code: a copy of `steps/step3_backpressure/src/per_upstream.rs`.

use std::ops::Index;

use crate::upstream::Upstream;

/// One `T` for each upstream: `values[Upstream::Pricing]` is pricing's.
#[derive(Debug, Clone)]
pub struct PerUpstream<T> {
    inventory: T,
    pricing: T,
    reviews: T,
}

impl<T> PerUpstream<T> {
    /// Each upstream's value, made by `value_for`, which is called once per
    /// upstream: inventory, then pricing, then reviews.
    pub fn from_fn(mut value_for: impl FnMut(Upstream) -> T) -> Self {
        PerUpstream {
            inventory: value_for(Upstream::Inventory),
            pricing: value_for(Upstream::Pricing),
            reviews: value_for(Upstream::Reviews),
        }
    }

    /// Like [`from_fn`](Self::from_fn), for values that can fail to build.
    ///
    /// # Errors
    ///
    /// The first error `value_for` returns; the upstreams after it are then
    /// not asked.
    pub fn try_from_fn<E>(mut value_for: impl FnMut(Upstream) -> Result<T, E>) -> Result<Self, E> {
        Ok(PerUpstream {
            inventory: value_for(Upstream::Inventory)?,
            pricing: value_for(Upstream::Pricing)?,
            reviews: value_for(Upstream::Reviews)?,
        })
    }
}

impl<T> Index<Upstream> for PerUpstream<T> {
    type Output = T;

    fn index(&self, upstream: Upstream) -> &T {
        match upstream {
            Upstream::Inventory => &self.inventory,
            Upstream::Pricing => &self.pricing,
            Upstream::Reviews => &self.reviews,
        }
    }
}
