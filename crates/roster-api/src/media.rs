//! GraphQL over HTTP (the GraphQL Foundation's spec, as the `graphql-http` audit suite checks
//! it): which media type an answer has, and its status code.
//!
//! A client names what it reads in `Accept`: `application/graphql-response+json` (the spec's own
//! type) or `application/json` (the legacy one, and the default for `*/*` or no `Accept`). The
//! answer has that type, with `charset=utf-8`. An operation refused before it ran (syntax,
//! validation, variable coercion, a limit) has no `data` entry (GraphQL spec, "Response"); as
//! `application/graphql-response+json` it answers 400, as `application/json` 200 (the spec's
//! rules for each type). Every other answer, errors from resolvers included, is 200.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// The media type of a GraphQL answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    /// `application/graphql-response+json`.
    GraphqlResponseJson,
    /// `application/json`.
    Json,
}

impl Media {
    /// The type the request's `Accept` headers prefer: the supported type with the highest
    /// `q` (`application/graphql-response+json` on a tie); `application/json` when neither is
    /// named, including for `*/*`, `application/*`, no `Accept`, or types we do not serve.
    pub fn negotiate(headers: &HeaderMap) -> Media {
        let (mut graphql, mut json) = (0.0f32, 0.0f32);
        let ranges = headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(','));
        for range in ranges {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .and_then(|(_, v)| v.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                "application/graphql-response+json" => graphql = graphql.max(q),
                "application/json" => json = json.max(q),
                _ => {}
            }
        }
        if graphql > 0.0 && graphql >= json {
            Media::GraphqlResponseJson
        } else {
            Media::Json
        }
    }

    /// The `Content-Type` value, with `charset=utf-8`.
    pub fn content_type(self) -> &'static str {
        match self {
            Media::GraphqlResponseJson => "application/graphql-response+json; charset=utf-8",
            Media::Json => "application/json; charset=utf-8",
        }
    }
}

/// The HTTP answer for an executed (or refused) GraphQL request, as `media`.
pub fn answer(response: async_graphql::Response, media: Media) -> Response {
    // Every error of a request refused before execution lacks a path; a resolver's has one.
    let rejected = response.data == async_graphql::Value::Null && !response.errors.is_empty() && response.errors.iter().all(|e| e.path.is_empty());
    // Serialised straight from the response (fields in the order the query selected them,
    // and no intermediate tree of every value); only a rejection is reshaped first.
    let body = if rejected {
        let mut body = serde_json::to_value(&response).unwrap_or_default();
        if let Some(object) = body.as_object_mut() {
            object.remove("data");
        }
        serde_json::to_vec(&body)
    } else {
        serde_json::to_vec(&response)
    };
    let status = if rejected && media == Media::GraphqlResponseJson { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let mut answer = (status, body.unwrap_or_default()).into_response();
    answer.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(media.content_type()));
    answer.headers_mut().extend(response.http_headers);
    answer
}

#[cfg(test)]
mod tests {
    use super::Media;
    use axum::http::{header, HeaderMap};

    fn negotiate(accept: &[&str]) -> Media {
        let mut headers = HeaderMap::new();
        for value in accept {
            headers.append(header::ACCEPT, value.parse().unwrap());
        }
        Media::negotiate(&headers)
    }

    #[test]
    fn accept_picks_the_preferred_supported_type() {
        use Media::{GraphqlResponseJson as G, Json as J};
        let cases: [(&[&str], Media); 9] = [
            (&[], J),
            (&["*/*"], J),
            (&["application/json"], J),
            (&["application/graphql-response+json"], G),
            (&["application/graphql-response+json, application/json"], G),
            (&["application/json, application/graphql-response+json;q=0.9"], J),
            (&["application/graphql-response+json;q=0"], J),
            (&["text/html", "application/graphql-response+json"], G),
            (&["text/plain"], J),
        ];
        for (accept, expected) in cases {
            assert_eq!(negotiate(accept), expected, "{accept:?}");
        }
    }
}
