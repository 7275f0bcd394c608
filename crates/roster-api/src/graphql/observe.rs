//! Feeds [`Telemetry`] from every GraphQL request, over HTTP or a websocket: one count per root
//! field with its outcome ([`Observation`], made by `graphql::gate` from the parsed document), and the latency
//! of each mutation, a command ([`command`], around its resolver). A request whose session
//! turned out to have ended is not counted: the HTTP handler answers it again without a
//! session, and that run counts (so one request counts once).

use crate::app::SessionCheck;
use crate::error::ApiError;
use crate::telemetry::Telemetry;
use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};
use async_graphql::{Context, PathSegment, Response, ServerError, Value};
use std::time::Instant;

/// A root field: the key it answers under (alias or name) and the schema's field name.
type RootField = (String, String);

/// The root fields of `set`, through fragments (their number is bounded by the limits, checked
/// on the same document before).
fn root_fields(document: &ExecutableDocument, set: &SelectionSet, out: &mut Vec<RootField>, depth: usize) {
    if depth > 8 {
        return;
    }
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) => {
                let name = field.node.name.node.to_string();
                let key = field.node.alias.as_ref().map_or_else(|| name.clone(), |a| a.node.to_string());
                out.push((key, name));
            }
            Selection::InlineFragment(fragment) => root_fields(document, &fragment.node.selection_set.node, out, depth + 1),
            Selection::FragmentSpread(spread) => {
                if let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node) {
                    root_fields(document, &fragment.node.selection_set.node, out, depth + 1);
                }
            }
        }
    }
}

/// An error's `extensions.code`; errors without one are malformed input (see `http::classify`).
fn code(error: &ServerError) -> String {
    match error.extensions.as_ref().and_then(|e| e.get("code")) {
        Some(Value::String(code)) => code.clone(),
        _ => "VALIDATION".to_string(),
    }
}

/// A refused document's code, as a label: one of the codes the server makes, else `VALIDATION`.
fn bounded(code: String) -> String {
    const KNOWN: [&str; 4] = ["VALIDATION", "QUERY_TOO_COMPLEX", "UNAUTHENTICATED", "RATE_LIMITED"];
    if KNOWN.contains(&code.as_str()) { code } else { "VALIDATION".to_string() }
}

/// What one request is counted as: the root fields of the operation it names (none for an
/// unknown operation). A subscription is not counted: it is not one request and one answer
/// (`roster_subscriptions_open` counts those running).
#[derive(Debug, Default)]
pub(super) struct Observation {
    fields: Option<Vec<RootField>>,
    subscription: bool,
}

impl Observation {
    /// The observation of the operation called `name` in `document` (without a name: its only
    /// one).
    pub(super) fn of(document: &ExecutableDocument, name: Option<&str>) -> Self {
        let operation = super::operation(document, name);
        let subscription = operation.is_some_and(|o| o.node.ty == OperationType::Subscription);
        let fields = operation.filter(|_| !subscription).map(|operation| {
            let mut fields = Vec::new();
            root_fields(document, &operation.node.selection_set.node, &mut fields, 0);
            fields
        });
        Self { fields, subscription }
    }

    /// Whether the operation is a subscription (not counted as a request).
    pub(super) fn is_subscription(&self) -> bool {
        self.subscription
    }

    /// Counts `response` in `telemetry` unless `session` ended (see the module's doc). Only an
    /// operation that ran (its answer has data, or errors at a path) is counted by its fields:
    /// those are then the schema's (validation passed), so the label stays bounded. A refused
    /// document counts once, as `(none)`, whatever names it made up.
    pub(super) async fn count(self, telemetry: &Telemetry, session: Option<SessionCheck>, response: &Response) {
        if let Some(session) = session {
            if !session.holds().await {
                return;
            }
        }
        let ran = !matches!(response.data, Value::Null) || response.errors.iter().any(|e| !e.path.is_empty());
        let general = response.errors.iter().find(|e| e.path.is_empty()).map(code);
        match self.fields.filter(|fields| ran && !fields.is_empty()) {
            Some(fields) => {
                for (key, name) in fields {
                    let own = response.errors.iter().find(|e| matches!(e.path.first(), Some(PathSegment::Field(f)) if *f == key));
                    let outcome = own.map(code).or_else(|| general.clone()).unwrap_or_else(|| "ok".to_string());
                    telemetry.count_request(&name, &outcome);
                }
            }
            None => {
                let outcome = general.or_else(|| response.errors.first().map(code)).unwrap_or_else(|| "ok".to_string());
                let outcome = if response.errors.is_empty() { outcome } else { bounded(outcome) };
                telemetry.count_request("(none)", &outcome);
            }
        }
    }
}

/// Runs the resolver `body` of a mutation (a command) with the application and request
/// context, records its latency in seconds and outcome (`ok` or the error's code) as
/// `roster_command_duration_seconds`, and maps its errors for this request.
pub(crate) async fn command<'a, T, F, Fut>(ctx: &Context<'a>, body: F) -> async_graphql::Result<T>
where
    F: FnOnce(&'a crate::app::App, &'a crate::app::RequestContext) -> Fut,
    Fut: std::future::Future<Output = Result<T, ApiError>>,
{
    let (app, req) = super::env(ctx);
    let started = Instant::now();
    let result = body(app, req).await;
    let outcome = match &result {
        Ok(_) => "ok".to_string(),
        Err(err) => err.code().to_string(),
    };
    app.telemetry().observe_command(&ctx.item.node.name.node, &outcome, started.elapsed().as_secs_f64());
    result.map_err(|e| super::gql_err(ctx, e))
}
