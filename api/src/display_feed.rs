//! The citizen's display over a plain WebSocket: `GET /live/counter-display`.
//!
//! A screen that shows one counter needs one thing pushed to it: the counter's display, after
//! every change. As a GraphQL subscription, each such screen keeps a parsed document, its
//! variables and async-graphql's execution state while it waits, ~10 KiB of the ~15 KiB an open
//! screen costs (docs/BENCHMARKS.md, "Where a screen's memory goes"). Here a waiting screen keeps
//! its socket and the watch of its counter; the display becomes JSON only when it changes,
//! through the GraphQL types themselves (`counter::display_data`), so it is exactly what the
//! `counterDisplay` query answers for the citizen's screen's selection.
//!
//! The protocol, JSON text messages in the shapes of graphql-transport-ws's `next` and `error`:
//! - the client first sends, within 10 s,
//!   `{"type":"subscribe","payload":{"authorization":"Bearer <token>","counterId":"quay-1"}}`
//!   (with `"agencyCode"` for a token not scoped to an agency);
//! - the server sends `{"type":"next","payload":{"data":{"counterDisplay":{…}}}}` with the
//!   display now (once a case was shown at the counter) and after every change;
//! - `{"type":"ping"}` from the client is answered `{"type":"pong"}` (a screen that hears no pong
//!   knows its socket is dead before the operating system does);
//! - a refused subscribe is answered `{"type":"error","payload":[{"message":…,"extensions":
//!   {"code":…}}]}`, and the socket is closed with 4400 (bad message), 4401 (no valid token),
//!   4403 (the token may not watch that counter) or 4408 (no subscribe in time).

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::future::BoxFuture;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::Authentication;
use crate::graphql::counter::{counter_scope, display_data, displays};
use crate::graphql::errors::ApiError;
use crate::http::WS_READ_BUFFER_BYTES;

/// How long a new socket may take to say which counter it shows.
const SUBSCRIBE_WITHIN: Duration = Duration::from_secs(10);
/// The largest message a screen sends (a subscribe with a token is well under 2 KiB).
const MESSAGE_LIMIT_BYTES: usize = 16 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new().route("/live/counter-display", get(feed))
}

async fn feed(State(state): State<AppState>, upgrade: WebSocketUpgrade) -> Response {
    upgrade
        .max_message_size(MESSAGE_LIMIT_BYTES)
        .max_frame_size(MESSAGE_LIMIT_BYTES)
        // As for GraphQL's sockets (`http::graphql_ws`): a screen sends a few small messages.
        .read_buffer_size(WS_READ_BUFFER_BYTES)
        .on_upgrade(move |socket| serve(state, socket))
        .into_response()
}

#[derive(Deserialize)]
#[serde(tag = "type", content = "payload", rename_all = "lowercase")]
enum ClientMessage {
    Subscribe(Subscribe),
    Ping,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Subscribe {
    authorization: Option<String>,
    counter_id: String,
    agency_code: Option<String>,
}

/// Why a socket is closed before it is fed: what the screen is told, and the close code.
struct Refusal {
    error: ApiError,
    close: u16,
}

impl Refusal {
    fn new(error: ApiError) -> Refusal {
        let close = match error {
            ApiError::Unauthenticated(_) => 4401,
            ApiError::Forbidden(_) => 4403,
            _ => 4400,
        };
        Refusal { error, close }
    }
}

/// One screen, for as long as it is open. Not an `async fn`: that would keep its arguments twice
/// (as passed, and moved into the body), the socket among them, in every open screen's task
/// (the test below measures it).
#[allow(clippy::manual_async_fn)]
fn serve(state: AppState, mut socket: WebSocket) -> impl Future<Output = ()> + Send {
    async move {
        // What only the first moments need is boxed (here and in `refuse`): an open screen's task
        // keeps room for the largest future it ever awaits, for as long as it is open.
        let subscribe = match Box::pin(tokio::time::timeout(SUBSCRIBE_WITHIN, first_subscribe(&mut socket))).await {
            Ok(Ok(Some(subscribe))) => subscribe,
            // Closed before it said anything.
            Ok(Ok(None)) => return,
            Ok(Err(refusal)) => return refuse(socket, refusal).await,
            Err(_) => {
                let error = ApiError::Validation("no subscribe message within 10 s".into());
                return refuse(socket, Refusal { error, close: 4408 }).await;
            }
        };
        let scope = match state.tokens.authenticate(subscribe.authorization.as_deref()) {
            Authentication::Authenticated(principal) => {
                counter_scope(&principal, subscribe.agency_code.as_deref(), &subscribe.counter_id)
            }
            Authentication::Invalid(reason) => Err(ApiError::Unauthenticated(reason)),
            Authentication::Anonymous => Err(ApiError::Unauthenticated(
                "a bearer token is required (\"authorization\": \"Bearer <token>\")".into(),
            )),
        };
        let (agency, counter) = match scope {
            Ok(scope) => scope,
            Err(error) => return refuse(socket, Refusal::new(error)).await,
        };
        let mut updates = Box::pin(displays(&state.context.live, &state.ledger, agency, counter));
        // Only the socket and the watch are kept while the screen waits: not the whole state.
        drop(state);
        loop {
            tokio::select! {
                display = updates.next() => {
                    // The watch ends only when the process's live routes close (shutting down).
                    let Some(display) = display else { return };
                    // Boxed: the GraphQL execution's future is large, and a waiting screen's task
                    // would otherwise keep room for it all the time.
                    let message = match Box::pin(display_data(*display)).await {
                        Ok(data) => json!({ "type": "next", "payload": { "data": data } }),
                        Err(error) => {
                            tracing::error!(%error, "a counter display could not be turned into JSON");
                            json!({ "type": "next", "payload": { "errors": [error_json(&ApiError::Internal)] } })
                        }
                    };
                    if socket.send(Message::text(message.to_string())).await.is_err() {
                        return;
                    }
                }
                message = socket.recv() => match message {
                    Some(Ok(Message::Text(text))) => {
                        if matches!(serde_json::from_str::<ClientMessage>(&text), Ok(ClientMessage::Ping))
                            && socket.send(Message::text(r#"{"type":"pong"}"#)).await.is_err()
                        {
                            return;
                        }
                    }
                    // Pings are answered by the socket itself; pongs and binary frames mean nothing here.
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Binary(_))) => {}
                    Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                },
            }
        }
    }
}

/// The first message: a subscribe (pings before it are answered), or why it is refused.
async fn first_subscribe(socket: &mut WebSocket) -> Result<Option<Subscribe>, Refusal> {
    loop {
        let text = match socket.recv().await {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Binary(_))) => {
                return Err(Refusal::new(ApiError::Validation("messages are JSON text".into())));
            }
            Some(Ok(Message::Close(_)) | Err(_)) | None => return Ok(None),
        };
        match serde_json::from_str::<ClientMessage>(&text) {
            Ok(ClientMessage::Subscribe(subscribe)) => return Ok(Some(subscribe)),
            Ok(ClientMessage::Ping) => {
                if socket.send(Message::text(r#"{"type":"pong"}"#)).await.is_err() {
                    return Ok(None);
                }
            }
            Err(error) => {
                return Err(Refusal::new(ApiError::Validation(format!(
                    "expected {{\"type\":\"subscribe\",\"payload\":{{\"authorization\":…,\"counterId\":…}}}}: {error}"
                ))));
            }
        }
    }
}

fn error_json(error: &ApiError) -> Value {
    json!({ "message": error.message(), "extensions": { "code": error.code() } })
}

/// Tells the screen why, and closes its socket (boxed, see `serve`).
fn refuse(mut socket: WebSocket, refusal: Refusal) -> BoxFuture<'static, ()> {
    Box::pin(async move {
        let message = json!({ "type": "error", "payload": [error_json(&refusal.error)] });
        let _ = socket.send(Message::text(message.to_string())).await;
        let reason = refusal.error.code();
        let _ = socket.send(Message::Close(Some(CloseFrame { code: refusal.close, reason: reason.into() }))).await;
        let _ = socket.close().await;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future `serve` returns: the task each open screen is, for as long as it
    /// is open (its socket is inside, the watch is boxed).
    fn task_size<F, Fut>(_: F) -> usize
    where
        F: Fn(AppState, WebSocket) -> Fut,
    {
        std::mem::size_of::<Fut>()
    }

    #[test]
    fn an_open_screens_task_keeps_no_room_for_a_graphql_execution() {
        let size = task_size(serve);
        assert!(size <= 1024, "a display feed's task is {size} bytes");
    }
}
