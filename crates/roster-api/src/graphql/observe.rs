//! Feeds [`Telemetry`] from every GraphQL operation: one count per root field with its outcome,
//! and the latency of each mutation (a command). A request whose session turned out to have
//! ended is not counted: the HTTP handler answers it again without a session, and that run
//! counts (so one request counts once).

use crate::app::{RequestContext, SessionCheck};
use crate::telemetry::Telemetry;
use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextPrepareRequest, NextRequest, NextResolve, ResolveInfo};
use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};
use async_graphql::{OutputType, PathSegment, Request, Response, ServerError, ServerResult, Value, Variables};
use std::any::TypeId;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The extension factory: one observer per operation.
pub struct Observe(pub Telemetry);

impl ExtensionFactory for Observe {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Observer { telemetry: self.0.clone(), operations: Mutex::default(), chosen: Mutex::default(), session: Mutex::default(), subscription: AtomicBool::default() })
    }
}

/// A root field: the key it answers under (alias or name) and the schema's field name.
type RootField = (String, String);

struct Observer {
    telemetry: Telemetry,
    /// Each operation of the document, by name, with its root fields.
    operations: Mutex<Vec<(Option<String>, Vec<RootField>)>>,
    /// The operation that ran (`execute` names it).
    chosen: Mutex<Option<Vec<RootField>>>,
    /// The request's session check (none: nothing to wait for).
    session: Mutex<Option<SessionCheck>>,
    /// Whether the document holds a subscription.
    subscription: AtomicBool,
}

/// The root fields of `set`, through fragments (their number is bounded by the limits
/// extension, which has run on the same document).
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

#[async_graphql::async_trait::async_trait]
impl Extension for Observer {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let response = next.run(ctx).await;
        let session = self.session.lock().expect("not poisoned").take();
        if let Some(session) = session {
            if !session.holds().await {
                return response;
            }
        }
        // Only an operation that ran names its fields: those are then the schema's (validation
        // passed), so the label stays bounded. A refused document counts once, as `(none)`,
        // whatever names it made up.
        let fields = self.chosen.lock().expect("not poisoned").take();
        let general = response.errors.iter().find(|e| e.path.is_empty()).map(code);
        match fields {
            Some(fields) if !fields.is_empty() => {
                for (key, name) in fields {
                    let own = response.errors.iter().find(|e| matches!(e.path.first(), Some(PathSegment::Field(f)) if *f == key));
                    let outcome = own.map(code).or_else(|| general.clone()).unwrap_or_else(|| "ok".to_string());
                    self.telemetry.count_request(&name, &outcome);
                }
            }
            _ => {
                let outcome = general.or_else(|| response.errors.first().map(code)).unwrap_or_else(|| "ok".to_string());
                let outcome = if response.errors.is_empty() { outcome } else { bounded(outcome) };
                self.telemetry.count_request("(none)", &outcome);
            }
        }
        response
    }

    async fn prepare_request(&self, ctx: &ExtensionContext<'_>, request: Request, next: NextPrepareRequest<'_>) -> ServerResult<Request> {
        // The request's own data (an HTTP request's context; `request`'s hook cannot see it).
        let context = request.data.get(&TypeId::of::<RequestContext>()).and_then(|data| data.downcast_ref::<RequestContext>());
        *self.session.lock().expect("not poisoned") = context.map(|r| r.session.clone());
        next.run(ctx, request).await
    }

    async fn parse_query(&self, ctx: &ExtensionContext<'_>, query: &str, variables: &Variables, next: NextParseQuery<'_>) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let operations = document
            .operations
            .iter()
            .map(|(name, operation)| {
                let mut fields = Vec::new();
                root_fields(&document, &operation.node.selection_set.node, &mut fields, 0);
                (name.map(|n| n.to_string()), fields)
            })
            .collect();
        *self.operations.lock().expect("not poisoned") = operations;
        let subscription = document.operations.iter().any(|(_, operation)| operation.node.ty == OperationType::Subscription);
        self.subscription.store(subscription, Ordering::Relaxed);
        Ok(document)
    }

    async fn execute(&self, ctx: &ExtensionContext<'_>, operation_name: Option<&str>, next: NextExecute<'_>) -> Response {
        // A subscription runs this for every event it delivers, and is counted when it starts
        // (its `request` hook): nothing to note per event.
        if self.subscription.load(Ordering::Relaxed) {
            return next.run(ctx, operation_name).await;
        }
        let chosen = {
            let operations = self.operations.lock().expect("not poisoned");
            match operation_name {
                Some(wanted) => operations.iter().find(|(name, _)| name.as_deref() == Some(wanted)),
                None => operations.first().filter(|_| operations.len() == 1),
            }
            .map(|(_, fields)| fields.clone())
        };
        *self.chosen.lock().expect("not poisoned") = chosen;
        next.run(ctx, operation_name).await
    }

    async fn resolve(&self, ctx: &ExtensionContext<'_>, info: ResolveInfo<'_>, next: NextResolve<'_>) -> ServerResult<Option<Value>> {
        let is_command = info.path_node.parent.is_none() && info.parent_type == super::MutationRoot::type_name();
        if !is_command {
            return next.run(ctx, info).await;
        }
        let command = info.name.to_string();
        let started = Instant::now();
        let result = next.run(ctx, info).await;
        let outcome = result.as_ref().err().map_or_else(|| "ok".to_string(), code);
        self.telemetry.observe_command(&command, &outcome, started.elapsed().as_secs_f64());
        result
    }
}
