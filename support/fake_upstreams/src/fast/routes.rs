//! The fast fake's routes: one handler serves all three services.
//!
//! `GET /inventory/{id}`, `/pricing/{id}` and `/reviews/{id}` differ only in
//! the body they send, so one handler takes the [`Service`] as a parameter. It
//! is written to stay cheap at thousands of requests per second: no logging,
//! no recording, one short read lock, a few atomic increments.

use std::sync::{Arc, PoisonError, RwLock};

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::behaviour::{Answer, Behaviour, ResponsePlan};
use super::counters::{Counters, Outcome, RequestGuard};
use crate::catalog::{GARBAGE_BODY, Service, parse_product_id};

/// What the server handle and every handler share.
#[derive(Debug)]
pub(crate) struct UpstreamState {
    /// Swapped whole by `set_behaviour`. A request reads it once, at its
    /// start, so a change applies to new requests and never half-way through
    /// one.
    behaviour: RwLock<Arc<Behaviour>>,
    pub(crate) counters: Counters,
}

impl UpstreamState {
    pub(crate) fn new(behaviour: Behaviour) -> Self {
        Self {
            behaviour: RwLock::new(Arc::new(behaviour)),
            counters: Counters::default(),
        }
    }

    pub(crate) fn behaviour(&self) -> Arc<Behaviour> {
        // A poisoned lock still holds a whole `Arc` (a swap cannot panic
        // half-way), so it is safe to keep using.
        let behaviour = self
            .behaviour
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::clone(&behaviour)
    }

    pub(crate) fn set_behaviour(&self, behaviour: Behaviour) {
        *self
            .behaviour
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(behaviour);
    }
}

/// The router for all three services. Any other path gets axum's empty `404`.
pub(crate) fn router(state: Arc<UpstreamState>) -> Router {
    Service::ALL
        .into_iter()
        .fold(Router::new(), |router, service| {
            router.route(
                &format!("/{}/{{id}}", service.name()),
                get(
                    move |State(state): State<Arc<UpstreamState>>, Path(id): Path<String>| {
                        answer(service, state, id)
                    },
                ),
            )
        })
        .with_state(state)
}

/// Handles one request for `service`: plan, wait, answer, count.
async fn answer(service: Service, state: Arc<UpstreamState>, id_segment: String) -> Response {
    // First thing, so that a client giving up at any later point is counted.
    let guard = RequestGuard::enter(&state.counters);

    let Some(product_id) = parse_product_id(&id_segment) else {
        guard.finish(Outcome::Failed);
        let message = format!("fake_upstreams: no {service} for {id_segment:?}: ids are digits");
        return (StatusCode::NOT_FOUND, message).into_response();
    };

    // The thread-local RNG is not `Send`: use it and let it go before the
    // first `.await`, or the handler's future could not move between threads.
    // How loaded the upstream is as this request arrives (itself included):
    // a degrading behaviour slows down with it.
    let in_flight = state.counters.in_flight();
    let plan = state.behaviour().plan(&mut rand::rng(), in_flight);

    let (delay, answer) = match plan {
        ResponsePlan::Hang => {
            // Never answer. The request stays in flight until its client
            // disconnects; hyper then drops this future, and the guard counts
            // a cancellation.
            std::future::pending().await
        }
        ResponsePlan::Answer { delay, answer } => (delay, answer),
    };

    // `tokio::time::sleep`, not a thread sleep: other requests go on meanwhile,
    // and under paused time (tests) the delay is virtual. A zero delay skips
    // the timer altogether.
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

    match answer {
        Answer::Product => {
            guard.finish(Outcome::Completed);
            Json(service.body(product_id)).into_response()
        }
        Answer::Garbage => {
            guard.finish(Outcome::Completed);
            ([(header::CONTENT_TYPE, "application/json")], GARBAGE_BODY).into_response()
        }
        Answer::Failure(status) => {
            guard.finish(Outcome::Failed);
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let message = format!("fake_upstreams: {service} answers {status}, as configured");
            (status, message).into_response()
        }
    }
}
