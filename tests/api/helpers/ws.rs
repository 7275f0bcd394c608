//! A graphql-transport-ws client for the tests (tokio-tungstenite).

use super::ApiClient;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A `graphql-transport-ws` client connected to a [`TestApp`].
pub struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>,
}

impl WsClient {
    /// Connects to `/graphql/ws` with `token` as `Authorization: Bearer` in `connection_init`.
    pub async fn connect(app: &ApiClient, token: &str) -> Self {
        Self::connect_to(app, "/graphql/ws", json!({ "Authorization": format!("Bearer {token}") })).await
    }

    /// Connects to `path` (`/graphql/ws`, or `/graphql` which upgrades too), sends
    /// `connection_init` with `payload` and waits for `connection_ack`.
    pub async fn connect_to(app: &ApiClient, path: &str, payload: Value) -> Self {
        Self::connect_speaking(app, "graphql-transport-ws", path, payload).await
    }

    /// Like [`WsClient::connect_to`], asking for subprotocol `protocol` (`graphql-ws` is the
    /// legacy subscriptions-transport-ws: `start`/`stop`, answers in `data` messages).
    pub async fn connect_speaking(app: &ApiClient, protocol: &str, path: &str, payload: Value) -> Self {
        let url = format!("{}{path}", app.address.replace("http://", "ws://"));
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
        let (socket, _) = tokio_tungstenite::connect_async(request).await.expect("websocket");
        let mut client = WsClient { socket };
        client.send(json!({ "type": "connection_init", "payload": payload })).await;
        let ack = client.next_message().await;
        assert_eq!(ack["type"], "connection_ack", "{ack}");
        client
    }

    /// Opens `/graphql/ws` (graphql-transport-ws) and sends nothing: no `connection_init`.
    pub async fn open_uninitialised(app: &ApiClient) -> Self {
        let url = format!("{}/graphql/ws", app.address.replace("http://", "ws://"));
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().unwrap());
        let (socket, _) = tokio_tungstenite::connect_async(request).await.expect("websocket");
        WsClient { socket }
    }

    /// Like [`WsClient::connect_to`] `/graphql/ws`, over an already connected `stream` (e.g. one
    /// with a small receive buffer).
    pub async fn over(stream: tokio::net::TcpStream, app: &ApiClient, payload: Value) -> Self {
        let url = format!("{}/graphql/ws", app.address.replace("http://", "ws://"));
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().unwrap());
        let (socket, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream)).await.expect("websocket");
        let mut client = WsClient { socket };
        client.send(json!({ "type": "connection_init", "payload": payload })).await;
        let ack = client.next_message().await;
        assert_eq!(ack["type"], "connection_ack", "{ack}");
        client
    }

    /// The next websocket frame of any kind; `None` when the connection ended. Panics after
    /// 30 s.
    pub async fn raw_next(&mut self) -> Option<Message> {
        let next = tokio::time::timeout(Duration::from_secs(30), self.socket.next()).await.expect("frame in time");
        let next = next.and_then(Result::ok);
        if let Some(Message::Text(text)) = &next {
            assert!(marker_in(text).is_none(), "a rendering marker reached the client: {text}");
        }
        next
    }

    /// Starts subscription `id`.
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": variables } })).await;
    }

    /// The next protocol message (`next`, `error`, `complete`, …); panics after 10 s.
    pub async fn next_message(&mut self) -> Value {
        serde_json::from_str(&self.next_text().await).expect("JSON message")
    }

    /// The next protocol message's text as sent; panics after 10 s, or if it holds a rendering
    /// marker (`graphql::splices`: every one must be replaced before a message leaves), so
    /// every test reading a websocket checks that.
    pub async fn next_text(&mut self) -> String {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(10), self.socket.next())
                .await
                .expect("message in time")
                .expect("socket open")
                .expect("websocket frame");
            // Pings and pongs are transport chatter, not protocol messages.
            if let Message::Text(text) = message {
                assert!(marker_in(&text).is_none(), "a rendering marker reached the client: {text}");
                return text.to_string();
            }
        }
    }

    /// Stops subscription `id` (`complete` from the client).
    pub async fn complete(&mut self, id: &str) {
        self.send(json!({ "id": id, "type": "complete" })).await;
    }

    /// Reads (and drops) messages until the server's close frame: its code and reason; `None`
    /// when the connection ends without one. Panics after 30 s.
    pub async fn close_frame(&mut self) -> Option<(u16, String)> {
        let read = async {
            while let Some(frame) = self.socket.next().await {
                match frame {
                    Ok(Message::Close(frame)) => return frame.map(|f| (u16::from(f.code), f.reason.to_string())),
                    Ok(Message::Text(text)) => assert!(marker_in(&text).is_none(), "a rendering marker reached the client: {text}"),
                    Ok(_) => {}
                    Err(_) => return None,
                }
            }
            None
        };
        tokio::time::timeout(Duration::from_secs(30), read).await.expect("close in time")
    }

    /// Closes the socket cleanly.
    pub async fn close(mut self) {
        self.socket.close(None).await.expect("close websocket");
    }

    /// Sends `message` as it is (a protocol message of the test's own making).
    pub async fn send(&mut self, message: Value) {
        self.socket.send(Message::Text(message.to_string().into())).await.expect("send on websocket");
    }
}

/// Where `text` holds a rendering marker: `roster.rendering.`, 32 hex digits (a connection's
/// nonce) and `:`.
fn marker_in(text: &str) -> Option<usize> {
    text.match_indices("roster.rendering.").map(|(at, _)| at).find(|&at| {
        let nonce = text.as_bytes().get(at + 17..at + 17 + 33);
        nonce.is_some_and(|n| n[..32].iter().all(u8::is_ascii_hexdigit) && n[32] == b':')
    })
}
