//! The websocket loop of `graphql-transport-ws` (and the older `graphql-ws`): async-graphql's
//! protocol handling ([`async_graphql::http::WebSocket`]) between the socket's two halves,
//! with two ways out that `async_graphql_axum::GraphQLWebSocket` does not offer:
//!
//! - **Slow consumers.** A client that stops reading makes sends wait once the socket buffers
//!   are full. One send waiting longer than `ROSTER_SLOW_CONSUMER_TIMEOUT` ends the connection
//!   with close code 1013 ("try again later") and a reason; its subscriptions are dropped at
//!   once (their caps' places, their readers), so an idle reader holds nothing for long.
//! - **Shared renderings.** Each outgoing message goes through the connection's
//!   [`Splices`], which put the JSON text of a rendering shared by subscribers where
//!   async-graphql wrote its marker (`graphql::splices`).
//! - **Shutdown.** When the server stops, open websockets are closed with code 1001 ("going
//!   away") instead of being cut without a close frame or holding shutdown up.

use crate::graphql::splices::Splices;
use crate::graphql::Gate;
use crate::lane::Lane;
use async_graphql::http::{WebSocketProtocols, WsMessage};
use async_graphql::Data;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::{Sink, SinkExt, StreamExt};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Close code: the server is going away (RFC 6455, 7.4.1).
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code: try again later (IANA registry); sent to a slow consumer.
pub const CLOSE_TRY_AGAIN_LATER: u16 = 1013;
/// Close code: no `connection_init` in time (graphql-transport-ws, "Connection initialisation
/// timeout"); an idle socket would otherwise hold its connection for ever.
pub const CLOSE_INIT_TIMEOUT: u16 = 4408;

/// How long a websocket may stay open without its `connection_init`, and how long a message
/// may stay unread before the client counts as a slow consumer.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From the upgrade to `connection_init` (`ROSTER_CONNECTION_INIT_TIMEOUT`, default 10 s).
    pub init: Duration,
    /// `ROSTER_SLOW_CONSUMER_TIMEOUT`, default 30 s.
    pub slow_consumer: Duration,
}

/// The websocket read buffer, bytes (see `http::graphql_ws`): enough for any message a
/// client normally sends; a larger one (up to the body limit) makes it grow.
pub const READ_BUFFER: usize = 4096;

/// How long a close frame may take to reach a client before the socket is dropped anyway.
const CLOSE_FLUSH: Duration = Duration::from_secs(5);

/// What every websocket of one server shares: the lane they run on, whether it is stopping,
/// and a token whose clones count the open sockets (the server waits until every clone is
/// dropped).
#[derive(Clone, Debug)]
pub struct Sockets {
    lane: Lane,
    stopping: watch::Receiver<bool>,
    _open: mpsc::Sender<()>,
}

/// The server's side of [`Sockets`]: [`Closer::close_all`] asks every socket to close.
#[derive(Debug)]
pub struct Closer {
    stopping: watch::Sender<bool>,
    open: mpsc::Receiver<()>,
}

impl Sockets {
    /// A new set of sockets that run on `lane`, and what stops them.
    pub fn new(lane: Lane) -> (Sockets, Closer) {
        let (stop, stopping) = watch::channel(false);
        let (open_tx, open) = mpsc::channel(1);
        (Sockets { lane, stopping, _open: open_tx }, Closer { stopping: stop, open })
    }

    /// Serves one upgraded websocket on the websocket lane ([`crate::lane`]; see [`serve`])
    /// and waits for it.
    pub async fn serve<F, R>(self, socket: WebSocket, gate: Gate, protocol: WebSocketProtocols, on_init: F, timeouts: Timeouts)
    where
        F: FnOnce(serde_json::Value) -> R + Send + 'static,
        R: Future<Output = async_graphql::Result<Data>> + Send + 'static,
    {
        let lane = self.lane.clone();
        lane.run(serve(socket, gate, protocol, on_init, timeouts, self)).await;
    }
}

impl Closer {
    /// Asks every open websocket to close (1001) and resolves when all have ended and every
    /// [`Sockets`] clone is dropped (the router's included).
    pub async fn close_all(mut self) {
        let _ = self.stopping.send(true);
        // `None` once every sender (socket) is gone; nothing is ever sent.
        let _ = self.open.recv().await;
    }
}

/// The subprotocol a websocket upgrade asks for (`Sec-WebSocket-Protocol`: the first one
/// async-graphql speaks), if any.
pub fn protocol(headers: &axum::http::HeaderMap) -> Option<WebSocketProtocols> {
    let offered = headers.get(axum::http::header::SEC_WEBSOCKET_PROTOCOL)?.to_str().ok()?;
    offered.split(',').find_map(|p| p.trim().parse().ok())
}

/// Serves one upgraded websocket until the client leaves, the server stops, the client sends
/// no `connection_init` within `timeouts.init` (closed 4408), or leaves a message unread for
/// `timeouts.slow_consumer` (closed 1013).
pub async fn serve<F, R>(socket: WebSocket, gate: Gate, protocol: WebSocketProtocols, on_init: F, timeouts: Timeouts, sockets: Sockets)
where
    F: FnOnce(serde_json::Value) -> R + Send + 'static,
    R: Future<Output = async_graphql::Result<Data>> + Send + 'static,
{
    let Sockets { mut stopping, _open, lane: _ } = sockets;
    let stop = async move {
        // Also when the sender is gone: the server is going away either way.
        let _ = stopping.wait_for(|stop| *stop).await;
    };
    futures::pin_mut!(stop);
    let slow_consumer_timeout = timeouts.slow_consumer;
    let (initialised, init) = tokio::sync::oneshot::channel::<()>();
    let on_init = move |payload| {
        let _ = initialised.send(());
        on_init(payload)
    };
    // Resolves only if `connection_init` does not come in time.
    let uninitialised = async move {
        if tokio::time::timeout(timeouts.init, init).await.is_ok() {
            std::future::pending::<()>().await;
        }
    };
    futures::pin_mut!(uninitialised);
    let (mut sink, stream) = socket.split();
    let input = stream
        .take_while(|message| futures::future::ready(message.is_ok()))
        .filter_map(|message| {
            futures::future::ready(match message {
                Ok(message @ (Message::Text(_) | Message::Binary(_))) => Some(message.into_data()),
                _ => None,
            })
        });
    // The renderings this connection's answers refer to (graphql::splices); without them
    // subscriptions resolve per subscriber.
    let mut data = Data::default();
    let splices = match Splices::new() {
        Ok(splices) => Some(Arc::new(splices)),
        Err(error) => {
            tracing::warn!(%error, "no random source for this websocket's rendering markers; its subscriptions resolve their own");
            None
        }
    };
    if let Some(splices) = &splices {
        data.insert(splices.clone());
    }
    // Boxed, so that dropping it ends the subscriptions there and then.
    let socket = async_graphql::http::WebSocket::new(gate, input, protocol).connection_data(data).on_connection_init(on_init);
    let mut output = Box::pin(socket.map(move |message| match message {
        WsMessage::Text(text) => Message::Text(match &splices {
            Some(splices) => splices.splice(text),
            None => text,
        }
        .into()),
        WsMessage::Close(code, reason) => Message::Close(Some(CloseFrame { code, reason: reason.into() })),
    }).fuse());
    loop {
        let message = tokio::select! {
            message = output.next() => message,
            () = &mut stop => {
                close(&mut sink, CLOSE_GOING_AWAY, "server shutting down").await;
                return;
            }
            () = &mut uninitialised => {
                close(&mut sink, CLOSE_INIT_TIMEOUT, "Connection initialisation timeout").await;
                return;
            }
        };
        let Some(message) = message else { return };
        match tokio::time::timeout(slow_consumer_timeout, send_burst(&mut sink, &mut output, message)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return,
            Err(_) => {
                tracing::warn!(timeout_s = slow_consumer_timeout.as_secs_f64(), "websocket client does not read; closing it (1013)");
                // The subscriptions end here, before the close frame waits its turn.
                drop(output);
                let reason = format!("slow consumer: a message stayed unread for {} s", slow_consumer_timeout.as_secs_f64());
                close(&mut sink, CLOSE_TRY_AGAIN_LATER, &reason).await;
                return;
            }
        }
    }
}

/// The most messages written between two flushes.
const BURST: usize = 64;

/// Writes `first` and every message `output` has ready at once (up to [`BURST`]), then flushes
/// them together: one write to the socket per burst instead of one per message, since with
/// many subscribers each committed batch of events is a burst of `next` messages on every
/// socket. A close frame ends the burst.
async fn send_burst<S, O>(sink: &mut S, output: &mut O, first: Message) -> Result<(), S::Error>
where
    S: Sink<Message> + Unpin,
    O: futures::Stream<Item = Message> + futures::stream::FusedStream + Unpin,
{
    let mut message = first;
    for fed in 1.. {
        let closing = matches!(message, Message::Close(_));
        sink.feed(message).await?;
        if closing || fed == BURST {
            break;
        }
        // Polled once: whatever is ready now joins this burst; the rest waits for the next.
        match futures::FutureExt::now_or_never(output.next()) {
            Some(Some(next)) => message = next,
            _ => break,
        }
    }
    sink.flush().await
}

/// Sends a close frame with `code` and `reason`, waiting at most [`CLOSE_FLUSH`].
async fn close(sink: &mut (impl Sink<Message> + Unpin), code: u16, reason: &str) {
    let frame = Message::Close(Some(CloseFrame { code, reason: reason.to_string().into() }));
    let _ = tokio::time::timeout(CLOSE_FLUSH, sink.send(frame)).await;
}
