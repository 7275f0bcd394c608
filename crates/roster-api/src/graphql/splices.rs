//! Shared renderings spliced into a websocket connection's messages as JSON text.
//!
//! Why: async-graphql's websocket protocol loop serialises each subscriber's answer on its
//! own. With one rendering per event and selection ([`super::renders`]) that still cost, per
//! event and subscriber, a clone of the rendering's value tree, its serialisation and its
//! drop: half of the websocket lane's CPU with 50 subscribers and 16 writers (perf;
//! docs/benchmarks.md). So a shared rendering is kept as JSON text, serialised once; a
//! subscriber's answer carries a short marker string in its place, and the connection's loop
//! ([`crate::websocket`]) puts the text where the marker is once async-graphql has serialised
//! the message. The bytes sent are the same as before: the object's JSON, compact, keys in
//! selection order.
//!
//! A marker is `roster.rendering.<nonce>:<n>`: the connection's nonce (128 random bits, never
//! sent: every marker is replaced before a message leaves) and a number this connection
//! issued. Only numbers issued and not yet spliced are replaced, each once, so no text a
//! client controls (a name in an event's payload, say) can pull a rendering into a message,
//! nor one of another connection. Letters, digits, `.` and `:` only: serde_json writes the
//! marker as it is, between quotes.

use async_graphql::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The renderings one websocket connection's answers refer to by marker, until its loop
/// splices them in. Shared by the connection's subscriptions (in its connection data, as
/// `Arc<Splices>`) and its loop.
#[derive(Debug)]
pub struct Splices {
    /// `"roster.rendering.<nonce>:`, as the marker appears in serialised JSON (with its quote).
    quoted_prefix: String,
    next: AtomicU64,
    /// Issued and not yet spliced: at most the answers between a resolver and the loop, which
    /// serialises each answer as soon as the subscription yields it.
    pending: Mutex<HashMap<u64, Arc<str>>>,
}

impl Splices {
    /// The splices of a new connection, with a fresh nonce.
    ///
    /// Errors: the operating system's random source failed.
    pub fn new() -> Result<Splices, getrandom::Error> {
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce)?;
        let nonce: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Splices { quoted_prefix: format!("\"roster.rendering.{nonce}:"), next: AtomicU64::new(0), pending: Mutex::default() })
    }

    /// A marker standing for `rendering` (an object's JSON text) in an answer's data.
    pub fn marker(&self, rendering: Arc<str>) -> Value {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.pending.lock().expect("splices").insert(n, rendering);
        Value::String(format!("{}{n}", &self.quoted_prefix[1..]))
    }

    /// `text` (a serialised message) with each marker this connection issued, quotes included,
    /// replaced by its rendering. Only a whole string value is a marker: its opening quote
    /// follows `:`, `,` or `[` (inside a string every quote is escaped, so this quote is JSON's),
    /// digits run from the prefix to its closing quote, and `,`, `}` or `]` follows that (not
    /// `:`: an object's key is not a value). Text inside a string is never touched, so the
    /// message stays valid JSON. Text without a marker comes back as it is, unallocated.
    pub fn splice(&self, text: String) -> String {
        let Some(mut at) = text.find(&self.quoted_prefix) else { return text };
        let mut spliced = String::with_capacity(text.len() + 1024);
        let mut rest = text.as_str();
        loop {
            let after = &rest[at + self.quoted_prefix.len()..];
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            // Whitespace aside (a pretty-printed message): inside a string a quote follows `\`.
            let opens_a_value = matches!(rest[..at].trim_end().as_bytes().last(), Some(b':' | b',' | b'['));
            let closes_a_value = after.as_bytes().get(digits) == Some(&b'"') && matches!(after[digits + 1..].trim_start().as_bytes().first(), Some(b',' | b'}' | b']'));
            if opens_a_value && digits > 0 && closes_a_value {
                spliced.push_str(&rest[..at]);
                match after[..digits].parse().ok().and_then(|n: u64| self.pending.lock().expect("splices").remove(&n)) {
                    Some(rendering) => spliced.push_str(&rendering),
                    None => {
                        // Only with the nonce, which no message carries: never send it either.
                        tracing::error!("a rendering marker with no rendering; answered null");
                        spliced.push_str("null");
                    }
                }
                rest = &after[digits + 1..];
            } else {
                // Not a marker this connection wrote: left as it is.
                spliced.push_str(&rest[..at + 1]);
                rest = &rest[at + 1..];
            }
            match rest.find(&self.quoted_prefix) {
                Some(next) => at = next,
                None => {
                    spliced.push_str(rest);
                    return spliced;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A `next` message as async-graphql's loop writes it, with `value` as the root field's.
    fn next_message(value: &Value) -> String {
        serde_json::to_string(&json!({ "id": "1", "type": "next", "payload": { "data": { "events": value } } })).unwrap()
    }

    #[test]
    fn a_marker_becomes_its_rendering_once_and_other_text_stays_as_it_is() {
        let splices = Splices::new().unwrap();
        let rendering: Arc<str> = r#"{"position":"7","payload":{"name":"Ann \"A\" Lee"}}"#.into();
        let marker = splices.marker(rendering.clone());
        let sent = splices.splice(next_message(&marker));
        let parsed: serde_json::Value = serde_json::from_str(&sent).unwrap();
        assert_eq!(parsed["payload"]["data"]["events"], serde_json::from_str::<serde_json::Value>(&rendering).unwrap());
        assert!(!sent.contains("roster.rendering"), "{sent}");
        assert!(splices.pending.lock().unwrap().is_empty(), "spliced renderings are let go");
        let plain = next_message(&Value::from("no marker here"));
        assert_eq!(splices.splice(plain.clone()), plain);
        // The same marker again (spliced already): not replayed, and the nonce not sent.
        let again = splices.splice(next_message(&marker));
        assert!(again.contains(r#""events":null"#) && !again.contains("roster.rendering"), "{again}");
    }

    #[test]
    fn markers_of_another_connection_or_in_a_clients_text_are_left_alone() {
        let (ours, theirs) = (Splices::new().unwrap(), Splices::new().unwrap());
        let their_marker = theirs.marker("{}".into());
        let _ours = ours.marker("{\"secret\":1}".into());
        let forged = Value::from("roster.rendering.00000000000000000000000000000000:0");
        for value in [their_marker, forged] {
            let text = next_message(&value);
            assert_eq!(ours.splice(text.clone()), text);
        }
    }

    #[test]
    fn several_markers_in_one_message_each_get_their_own_rendering() {
        let splices = Splices::new().unwrap();
        let (a, b) = (splices.marker("[1]".into()), splices.marker("[2]".into()));
        let text = serde_json::to_string(&json!({ "data": { "a": a, "b": b, "c": "tail" } })).unwrap();
        assert_eq!(splices.splice(text), r#"{"data":{"a":[1],"b":[2],"c":"tail"}}"#);
    }

    #[test]
    fn this_connections_marker_text_inside_a_string_stays_as_it_is() {
        // Only a client who knew the nonce could write it; even then its text is its own.
        let splices = Splices::new().unwrap();
        let Value::String(marker) = splices.marker("{\"secret\":1}".into()) else { unreachable!() };
        for text in [format!("x\"{marker}\" y"), format!("\"{marker}"), format!("{marker}\""), format!("\\\"{marker}"), format!("{marker}x")] {
            let message = next_message(&Value::from(text.as_str()));
            let sent = splices.splice(message.clone());
            assert_eq!(sent, message, "{text}");
        }
        let Value::String(other) = splices.marker("[7]".into()) else { unreachable!() };
        let pretty = serde_json::to_string_pretty(&json!({ "data": { "a": other } })).unwrap();
        assert_eq!(splices.splice(pretty), "{\n  \"data\": {\n    \"a\": [7]\n  }\n}", "pretty-printed too");
        let key = serde_json::to_string(&json!({ "a": 1, marker.as_str(): 2 })).unwrap();
        assert_eq!(splices.splice(key.clone()), key, "a key is not a value");
        let list = serde_json::to_string(&json!({ "data": [format!("a\"{marker}"), marker] })).unwrap();
        assert_eq!(splices.splice(list), format!("{{\"data\":[\"a\\\"{marker}\",{{\"secret\":1}}]}}"));
        assert!(splices.pending.lock().unwrap().is_empty());
    }
}
