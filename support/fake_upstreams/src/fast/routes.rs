//! The fast fake's routes: one handler serves all three services.
//!
//! `GET /inventory/{id}`, `/pricing/{id}` and `/reviews/{id}` differ only in
//! the body they send, so one handler takes the [`Service`] as a parameter. It
//! is written to stay cheap at thousands of requests per second: no logging,
//! no recording, one short read lock, a few atomic increments.
//!
//! A behaviour with a `body_delay` sends the status and headers first and the
//! body later (a one-chunk stream), so tests can tell "the headers arrived"
//! from "the answer was read".

use std::convert::Infallible;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

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
    /// In an `Arc` so a request's guard can outlive the handler, inside a
    /// late body.
    pub(crate) counters: Arc<Counters>,
}

impl UpstreamState {
    pub(crate) fn new(behaviour: Behaviour) -> Self {
        Self {
            behaviour: RwLock::new(Arc::new(behaviour)),
            counters: Arc::new(Counters::default()),
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
    let behaviour = state.behaviour();
    let plan = behaviour.plan(&mut rand::rng(), in_flight);

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

    let reply = Reply::of(service, product_id, answer);
    if behaviour.body_delay.is_zero() {
        guard.finish(reply.outcome);
        reply.into_response()
    } else {
        reply.with_late_body(behaviour.body_delay, guard)
    }
}

/// One answer, ready to send: status, content type, body, and how to count it.
struct Reply {
    status: StatusCode,
    content_type: &'static str,
    body: Bytes,
    outcome: Outcome,
}

impl Reply {
    fn of(service: Service, product_id: u64, answer: Answer) -> Reply {
        match answer {
            Answer::Product => Reply {
                status: StatusCode::OK,
                content_type: "application/json",
                body: Bytes::from(service.body(product_id).to_string()),
                outcome: Outcome::Completed,
            },
            Answer::Garbage => Reply {
                status: StatusCode::OK,
                content_type: "application/json",
                body: Bytes::from_static(GARBAGE_BODY.as_bytes()),
                outcome: Outcome::Completed,
            },
            Answer::Failure(status) => {
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                Reply {
                    status,
                    content_type: "text/plain; charset=utf-8",
                    body: Bytes::from(format!(
                        "fake_upstreams: {service} answers {status}, as configured"
                    )),
                    outcome: Outcome::Failed,
                }
            }
        }
    }

    /// Status, headers and body, all at once.
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CONTENT_TYPE, self.content_type)],
            self.body,
        )
            .into_response()
    }

    /// Status and headers now, the body `body_delay` later.
    ///
    /// The body is a stream whose only chunk is ready after the delay. hyper
    /// sends the head first, and the body when the stream yields it; until
    /// then the request is in flight, because `guard` travels inside the
    /// stream. A client that goes away meanwhile drops the stream, and with
    /// it the guard, which counts a cancellation.
    fn with_late_body(self, body_delay: Duration, guard: RequestGuard) -> Response {
        let Reply {
            status,
            content_type,
            body,
            outcome,
        } = self;
        let late_body = futures::stream::once(async move {
            tokio::time::sleep(body_delay).await;
            guard.finish(outcome);
            Ok::<Bytes, Infallible>(body)
        });
        (
            status,
            [(header::CONTENT_TYPE, content_type)],
            Body::from_stream(late_body),
        )
            .into_response()
    }
}
