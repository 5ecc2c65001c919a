//! The shape every aggregate shares: a state folded from its events, and a pure `decide` that
//! turns a command into new events or refuses it. The application layer
//! (`feeledger_infrastructure::command`) runs any decider the same way: read and fold the
//! stream, decide, append at the version read, decide again if the stream moved meanwhile.
//!
//! `evolve` is total: an event that cannot be applied (a sum past the largest amount) marks the
//! state rather than panicking or keeping a wrong figure, and `decide` refuses to act on such a
//! state (see `CaseFees::inconsistent`).

use crate::agency::{Agency, AgencyConfigured, AgencyError};
use crate::case_fees::{self, CaseError, CaseEvent, CaseFees};
use crate::fee_schedule::{FeeSchedule, FeeScheduleError, FeeSchedulePublished, PublishFeeSchedule};
use crate::oversight::{TargetError, TargetSet, Targets};

pub trait Decider {
    type State: Default + Clone + Send + Sync;
    type Command: Clone + Send + Sync;
    type Event: Clone + Send + Sync;
    type Error: std::error::Error + Send + Sync;

    /// The events a command produces on this state; none when it changes nothing (a repeat).
    fn decide(state: &Self::State, command: Self::Command) -> Result<Vec<Self::Event>, Self::Error>;

    fn evolve(state: Self::State, event: &Self::Event) -> Self::State;

    fn fold<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self::State
    where
        Self::Event: 'a,
    {
        events.into_iter().fold(Self::State::default(), Self::evolve)
    }
}

/// A case's fees: assessment, QR codes, payments, reconciliation, remittance, receipts.
#[derive(Debug, Clone, Copy)]
pub struct CaseDecider;

impl Decider for CaseDecider {
    type State = CaseFees;
    type Command = case_fees::Command;
    type Event = CaseEvent;
    type Error = CaseError;

    fn decide(state: &CaseFees, command: case_fees::Command) -> Result<Vec<CaseEvent>, CaseError> {
        case_fees::decide(state, command)
    }

    fn evolve(state: CaseFees, event: &CaseEvent) -> CaseFees {
        case_fees::evolve(state, event)
    }
}

/// An agency's configuration; configuring it again with the same settings appends nothing.
#[derive(Debug, Clone, Copy)]
pub struct AgencyDecider;

impl Decider for AgencyDecider {
    type State = Agency;
    type Command = AgencyConfigured;
    type Event = AgencyConfigured;
    type Error = AgencyError;

    fn decide(state: &Agency, wanted: AgencyConfigured) -> Result<Vec<AgencyConfigured>, AgencyError> {
        Ok(state.decide_configure(wanted)?.into_iter().collect())
    }

    fn evolve(state: Agency, event: &AgencyConfigured) -> Agency {
        state.evolve(event)
    }
}

/// An agency's fee schedule: every published version.
#[derive(Debug, Clone, Copy)]
pub struct FeeScheduleDecider;

impl Decider for FeeScheduleDecider {
    type State = FeeSchedule;
    type Command = PublishFeeSchedule;
    type Event = FeeSchedulePublished;
    type Error = FeeScheduleError;

    fn decide(state: &FeeSchedule, command: PublishFeeSchedule) -> Result<Vec<FeeSchedulePublished>, FeeScheduleError> {
        Ok(vec![state.decide_publish(command)?])
    }

    fn evolve(state: FeeSchedule, event: &FeeSchedulePublished) -> FeeSchedule {
        state.evolve(event)
    }
}

/// The province's cashless and online targets per level, effective from a month; setting the
/// target already in force appends nothing.
#[derive(Debug, Clone, Copy)]
pub struct TargetsDecider;

impl Decider for TargetsDecider {
    type State = Targets;
    type Command = TargetSet;
    type Event = TargetSet;
    type Error = TargetError;

    fn decide(state: &Targets, wanted: TargetSet) -> Result<Vec<TargetSet>, TargetError> {
        Ok(state.decide_set(wanted)?.into_iter().collect())
    }

    fn evolve(state: Targets, event: &TargetSet) -> Targets {
        state.evolve(event)
    }
}

/// An agency's reconciliation items resolved by hand, each once.
#[derive(Debug, Clone, Copy)]
pub struct ResolutionsDecider;

impl Decider for ResolutionsDecider {
    type State = crate::reconciliation::Resolutions;
    type Command = crate::reconciliation::ItemResolved;
    type Event = crate::reconciliation::ItemResolved;
    type Error = crate::reconciliation::ResolveError;

    fn decide(
        state: &crate::reconciliation::Resolutions,
        wanted: crate::reconciliation::ItemResolved,
    ) -> Result<Vec<crate::reconciliation::ItemResolved>, crate::reconciliation::ResolveError> {
        Ok(state.decide_resolve(wanted)?.into_iter().collect())
    }

    fn evolve(
        state: crate::reconciliation::Resolutions,
        event: &crate::reconciliation::ItemResolved,
    ) -> crate::reconciliation::Resolutions {
        state.evolve(event)
    }
}
