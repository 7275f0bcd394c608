//! The schema's executor as HTTP and websockets use it ([`Gate`]): what every operation goes
//! through before and after async-graphql runs it.
//!
//! Before: the document's text and shape are bounded ([`limits`]), it is parsed once (the
//! schema reuses the parse; a syntax error is answered in a few words), a command waits for the
//! session check ([`session`]), a websocket operation is identified again from its connection's
//! bearer, and the operation's answer [`Plan`] is made. After: validation's cost and depth
//! refusals get their code ([`limits::name_refusals`]), the answer is put in selection order
//! ([`order`]), and the request (a subscription excepted) is counted ([`observe`]).
//!
//! **Why not async-graphql extensions.** With any extension installed, async-graphql 7.2
//! resolves every field on its slow path: a `ResolveInfo` with two registry look-ups by type
//! and field name, two `String`s per list item, and a boxed future per extension and field.
//! None of this module's work is per field, so the schema has no extension and every field
//! takes the fast path (measured: a 50-member page's p99 about a fifth lower,
//! `docs/benchmarks.md`).

use super::limits;
use super::observe::Observation;
use super::order::{reorder, Plan};
use super::session;
use super::RosterSchema;
use crate::app::{App, RequestContext};
use async_graphql::futures_util::stream::{self, BoxStream, StreamExt};
use async_graphql::{Data, Executor, Request, Response, ServerError};
use std::any::TypeId;
use std::sync::Arc;

/// The schema with this module's checks around it. Cheap to clone.
#[derive(Clone)]
pub struct Gate {
    schema: RosterSchema,
    app: App,
}

/// What [`Gate::prepare`] learnt from the document for after the execution.
struct Prepared {
    plan: Option<Arc<Plan>>,
    observation: Observation,
}

/// An answer of one error and no data.
fn refused(error: ServerError) -> Response {
    Response::from_errors(vec![error])
}

/// Puts `response` in shape: refusals named, keys in selection order.
fn finish(plan: Option<&Plan>, mut response: Response) -> Response {
    limits::name_refusals(&mut response);
    if let Some(plan) = plan {
        reorder(plan, &mut response.data);
    }
    response
}

impl Gate {
    /// `schema` (built without extensions: see the module's doc) behind this module's checks.
    pub fn new(schema: RosterSchema, app: App) -> Self {
        Self { schema, app }
    }

    /// Bounds, parses and checks `request`; the refusal is the answer.
    async fn prepare(&self, mut request: Request) -> Result<(Request, Prepared), Response> {
        limits::check_text(&request.query).map_err(refused)?;
        let operation_name = request.operation_name.clone();
        let document = request.parsed_query().map_err(|e| refused(limits::concise_syntax_error(e.clone())))?;
        limits::check_document(document).map_err(refused)?;
        let plan = Plan::for_operation(document, operation_name.as_deref()).map(Arc::new);
        let observation = Observation::of(document, operation_name.as_deref());
        if session::holds_command(document) {
            session::wait_for_check(&request).await.map_err(refused)?;
        }
        Ok((request, Prepared { plan, observation }))
    }
}

impl Executor for Gate {
    /// Runs one operation over HTTP and counts it.
    async fn execute(&self, request: Request) -> Response {
        let context = request.data.get(&TypeId::of::<RequestContext>()).and_then(|d| d.downcast_ref::<RequestContext>());
        let session = context.map(|c| c.session.clone());
        let (response, observation) = match self.prepare(request).await {
            Ok((request, Prepared { plan, observation })) => (finish(plan.as_deref(), self.schema.execute(request).await), observation),
            Err(response) => (response, Observation::default()),
        };
        observation.count(self.app.telemetry(), session, &response).await;
        response
    }

    /// Runs one websocket operation (a subscription's stream, or a query's or command's one
    /// answer, counted) with the connection's data `session_data`.
    fn execute_stream(&self, request: Request, session_data: Option<Arc<Data>>) -> BoxStream<'static, Response> {
        let gate = self.clone();
        stream::once(async move {
            let request = session::on_connection(&gate.app, session_data.as_deref(), request).await;
            let telemetry = gate.app.telemetry().clone();
            let (request, Prepared { plan, observation }) = match gate.prepare(request).await {
                Ok(prepared) => prepared,
                Err(response) => {
                    Observation::default().count(&telemetry, None, &response).await;
                    return stream::once(async move { response }).boxed();
                }
            };
            let answers = gate.schema.execute_stream_with_session_data(request, session_data.unwrap_or_default());
            let answers = answers.map(move |response| finish(plan.as_deref(), response));
            if observation.is_subscription() {
                return answers.boxed();
            }
            // A query or command has one answer: counted as an HTTP request's is.
            let mut observation = Some(observation);
            answers
                .then(move |response| {
                    let (observation, telemetry) = (observation.take(), telemetry.clone());
                    async move {
                        if let Some(observation) = observation {
                            observation.count(&telemetry, None, &response).await;
                        }
                        response
                    }
                })
                .boxed()
        })
        .flatten()
        .boxed()
    }
}
