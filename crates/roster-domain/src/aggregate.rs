//! The one bridge from a pure `decide` to cqrs-es's `Aggregate::handle`, shared by every
//! aggregate so that "decide, then write each event to the sink" exists once.

use crate::DomainError;
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;

/// An aggregate whose commands are decided by a pure function of its state.
pub trait Decide: Aggregate<Error = DomainError> {
    /// Decides `command` against the current state: the events to append, in order, or why not.
    /// `Ok(vec![])` is a no-op (e.g. changing a role to the role it already is). Never mutates.
    ///
    /// Errors: the [`DomainError`] the command is refused with; a refused command emits nothing.
    fn decide(&self, command: Self::Command) -> Result<Vec<Self::Event>, DomainError>;
}

/// Implements `Aggregate::handle` for any [`Decide`] aggregate: decides `command`, then writes
/// each event to `sink`, which applies it to `aggregate` as cqrs-es expects.
///
/// Errors: whatever [`Decide::decide`] refuses with; then nothing is written.
pub async fn handle<A: Decide>(
    aggregate: &mut A,
    command: A::Command,
    sink: &EventSink<A>,
) -> Result<(), DomainError> {
    for event in aggregate.decide(command)? {
        sink.write(event, aggregate).await;
    }
    Ok(())
}
