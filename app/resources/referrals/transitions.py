"""The referral workflow's transition table, its guards and the check of client-supplied Task updates.

One table serves both the actions of workflow.py and validate_update (a plain `PUT Task/{id}`): a row
says which Task.status values an action starts from, the status it leads to, the businessStatus codes it
may set (or that it keeps the current one) and the guard that checks the business rules of the result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from app.fhir.outcome import Category, FhirError
from app.resources.referrals.codes import (
    REJECTION_REASON_SYSTEM,
    TERMINAL_STATUSES,
    BusinessStatus,
    Output,
    RejectionReason,
    TaskStatus,
)
from app.resources.referrals.taskjson import (
    Task,
    business_status,
    care_deadline,
    is_reference,
    output,
    received_date,
    reference_key,
    status,
)


class IllegalTransition(FhirError):
    """The action is not allowed in the Task's current state: a business rule, so 422 (R4 3.1.0.9; 409
    is for version conflicts)."""

    def __init__(self, message: str, expression: tuple[str, ...] = ("Task.status",)) -> None:
        super().__init__(Category.UNPROCESSABLE, message, "business-rule", expression)


class InvalidInput(FhirError):
    """The inputs of an action, or a client's Task, break a rule (HTTP 422)."""

    def __init__(self, message: str, expression: tuple[str, ...] = ()) -> None:
        super().__init__(Category.UNPROCESSABLE, message, "invalid", expression)


Guard = Callable[[Task, Task], None]


@dataclass(frozen=True)
class Transition:
    action: str
    sources: frozenset[str]
    target: str
    sets: frozenset[str] | None  # businessStatus codes the action may set; None: keeps the current one
    guard: Guard | None = None


def _guard_receive(old: Task, new: Task) -> None:
    if not is_reference(new.get("owner")):
        raise InvalidInput("receive: the receiving organisation (Task.owner) is required", ("Task.owner",))


def _guard_assess(old: Task, new: Task) -> None:
    # a right without a deadline is refused by check_invariants, which every update runs
    if business_status(new) != BusinessStatus.RETT and care_deadline(new) is not None:
        raise InvalidInput(
            "only a right to necessary care has a deadline for start of care",
            ("Task.restriction.period.end",),
        )


def _guard_forward(old: Task, new: Task) -> None:
    if not is_reference(new.get("owner")):
        raise InvalidInput("forward: the organisation forwarded to (Task.owner) is required", ("Task.owner",))
    if reference_key(new.get("owner")) == reference_key(old.get("owner")):
        raise InvalidInput("forward: the new owner is the current owner", ("Task.owner",))


def _guard_conversation(old: Task, new: Task) -> None:
    # The conversation comes before the decision: offering it over a granted right would silently drop the
    # right (and its deadline) and then block accept.
    if business_status(old) == BusinessStatus.RETT:
        raise IllegalTransition(
            "offer_assessment_conversation: the referral is already assessed as a right to necessary care; "
            "assess it again first if the decision is to be reconsidered"
        )


def _guard_accept(old: Task, new: Task) -> None:
    if business_status(old) != BusinessStatus.RETT:
        raise IllegalTransition(
            "accept: the referral must first be assessed as a right to necessary care "
            f"(businessStatus is {business_status(old) or 'empty'})"
        )


def _guard_reject(old: Task, new: Task) -> None:
    reason = new.get("statusReason")
    reason = reason if isinstance(reason, dict) else {}
    codes = {
        c.get("code")
        for c in reason.get("coding", [])
        if isinstance(c, dict) and c.get("system") == REJECTION_REASON_SYSTEM
    }
    # Henvisningsveilederen: an incomplete referral may not be returned without an assessment.
    if RejectionReason.DUPLICATE not in codes and business_status(old) != BusinessStatus.IKKE_RETT:
        raise IllegalTransition(
            "reject: the referral must first be assessed as not entitled (only a duplicate is rejected unassessed)"
        )
    if not (reason.get("coding") or reason.get("text")):
        raise InvalidInput("reject: a reason (Task.statusReason) is required", ("Task.statusReason",))


def _guard_hold(old: Task, new: Task) -> None:
    reason = new.get("statusReason")
    if not isinstance(reason, dict) or not (reason.get("coding") or reason.get("text")):
        raise InvalidInput("hold: a reason (Task.statusReason) is required", ("Task.statusReason",))


def _guard_appointment(old: Task, new: Task) -> None:
    if not is_reference(output(new, Output.APPOINTMENT)):
        raise InvalidInput(
            "give_appointment: Task.output 'time' must reference the Appointment", ("Task.output",)
        )


def _states(*statuses: TaskStatus) -> frozenset[str]:
    return frozenset(str(s) for s in statuses)


_S = TaskStatus
_B = BusinessStatus
TRANSITIONS: tuple[Transition, ...] = (
    Transition("receive", _states(_S.REQUESTED), _S.RECEIVED, frozenset({_B.MOTTATT}), _guard_receive),
    Transition(
        "assess",
        _states(_S.RECEIVED),
        _S.RECEIVED,
        frozenset({_B.RETT, _B.IKKE_RETT, _B.VURDERT}),
        _guard_assess,
    ),
    Transition(
        "offer_assessment_conversation",
        _states(_S.RECEIVED),
        _S.RECEIVED,
        frozenset({_B.VURDERINGSSAMTALE_TILBUDT}),
        _guard_conversation,
    ),
    Transition("forward", _states(_S.RECEIVED), _S.REQUESTED, frozenset({_B.VIDERESENDT}), _guard_forward),
    Transition("accept", _states(_S.RECEIVED), _S.ACCEPTED, None, _guard_accept),
    Transition("reject", _states(_S.RECEIVED), _S.REJECTED, None, _guard_reject),
    Transition(
        "give_appointment",
        _states(_S.ACCEPTED),
        _S.ACCEPTED,
        frozenset({_B.TIME_TILDELT}),
        _guard_appointment,
    ),
    Transition("hold", _states(_S.ACCEPTED), _S.ON_HOLD, None, _guard_hold),
    Transition("resume", _states(_S.ON_HOLD), _S.ACCEPTED, None),
    Transition("start", _states(_S.ACCEPTED), _S.IN_PROGRESS, None),
    Transition("complete", _states(_S.IN_PROGRESS), _S.COMPLETED, None),
    Transition("cancel", _states(_S.REQUESTED, _S.RECEIVED, _S.ACCEPTED, _S.ON_HOLD), _S.CANCELLED, None),
)
TRANSITION = {t.action: t for t in TRANSITIONS}


def allowed_actions(task: Task) -> list[str]:
    """The actions whose source states include the Task's status (guards may still refuse)."""
    return [t.action for t in TRANSITIONS if status(task) in t.sources]


def check_invariants(task: Task) -> None:
    """Rules that hold in every state: a right has a deadline, and the deadline is after the receipt."""
    received, deadline = received_date(task), care_deadline(task)
    if business_status(task) == BusinessStatus.RETT and deadline is None:
        raise InvalidInput(
            "a right to necessary care needs a deadline for start of care (Task.restriction.period.end)",
            ("Task.restriction.period.end",),
        )
    if received is not None and deadline is not None and deadline <= received:
        raise InvalidInput(
            f"the deadline for start of care ({deadline.isoformat()}) must be after the date the referral "
            f"was received ({received.isoformat()})",
            ("Task.restriction.period.end",),
        )


# -- client-supplied updates -----------------------------------------------------------------------

# Elements that identify the referral; a client may not move a Task to another referral or patient.
IMMUTABLE = ("focus", "for", "intent", "requester", "authoredOn", "basedOn")


def validate_create(task: Task) -> None:
    """A new referral Task starts as requested, with intent order and a focus."""
    if task.get("resourceType") != "Task":
        raise InvalidInput("not a Task")
    if status(task) != TaskStatus.REQUESTED:
        raise IllegalTransition(f"a new referral Task starts as 'requested', not '{status(task)}'")
    if task.get("intent") != "order":
        raise InvalidInput("a referral Task has intent 'order'", ("Task.intent",))
    if not is_reference(task.get("focus")):
        raise InvalidInput("a referral Task has a focus (the ServiceRequest)", ("Task.focus",))
    check_invariants(task)


def _matching(
    old_status: str, new_status: str, old_bs: str | None, new_bs: str | None
) -> Iterable[Transition]:
    for t in TRANSITIONS:
        keeps = t.sets is None and new_bs == old_bs
        if (
            old_status in t.sources
            and t.target == new_status
            and (keeps or (t.sets is not None and new_bs in t.sets))
        ):
            yield t


def validate_update(old: Task, new: Task) -> str | None:
    """Check a client's replacement of a Task against the transition table.

    Returns the action the update amounts to, or None for an update that keeps status and businessStatus
    (notes, outputs and such). Raises IllegalTransition or InvalidInput like the actions do.
    """
    for name in IMMUTABLE:
        if old.get(name) != new.get(name):
            raise InvalidInput(f"Task.{name} cannot change", (f"Task.{name}",))
    old_status, new_status = status(old), status(new)
    old_bs, new_bs = business_status(old), business_status(new)
    action = _action_of(old, new, old_status, new_status, old_bs, new_bs)
    # the owner changes by forwarding (which records it), on receipt, or by routing before receipt
    owner_changed = reference_key(old.get("owner")) != reference_key(new.get("owner"))
    if owner_changed and action not in ("forward", "receive") and old_status != TaskStatus.REQUESTED:
        raise IllegalTransition("Task.owner changes only by forwarding the referral", ("Task.owner",))
    check_invariants(new)
    return action


def _action_of(
    old: Task, new: Task, old_status: str, new_status: str, old_bs: str | None, new_bs: str | None
) -> str | None:
    if old_status == new_status and old_bs == new_bs:
        return None
    if old_status in TERMINAL_STATUSES:
        raise IllegalTransition(f"the referral is {old_status}; its status can no longer change")
    candidates = list(_matching(old_status, new_status, old_bs, new_bs))
    if not candidates:
        nexts = sorted({f"{t.target} ({t.action})" for t in TRANSITIONS if old_status in t.sources})
        raise IllegalTransition(
            f"Task.status '{old_status}' → '{new_status}' with businessStatus '{new_bs}' is not a legal "
            f"transition (from '{old_status}': {', '.join(nexts) or 'none'})"
        )
    transition = candidates[0]  # (from, to, businessStatus) picks at most one row of the table
    if transition.guard is not None:
        transition.guard(old, new)
    return transition.action
