"""The path of one failure: read the run, claim it, diagnose, decide, act, notify, record.

`process` is the queue function's whole job. Every I/O goes through `PipelineDeps`, built once per worker
by shared.wiring (or by hand in tests). Errors: TransientError raises (the queue retries); anything that
will never work raises PermanentError and the caller sends the message to the poison queue with its reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from shared import actions, completion, telemetry
from shared.classify import Classification, FailureSignals
from shared.databricks import compute
from shared.databricks.api import JobsApi
from shared.databricks.models import SUCCEEDED_RESULT_STATES, Job, Run
from shared.decide import DecisionInput, decide, job_controls
from shared.decision import Analysis, DecisionRecord, FieldChange, utcnow
from shared.diagnose import Classifier, diagnose
from shared.incidents.key import cause_key
from shared.events import FailureEvent
from shared.exceptions import PermanentError
from shared.freshness import hold_stale
from shared.handover import HandOver, hand_over
from shared.handover import is_token as is_handover_token
from shared.handover import to_message as handover_message
from shared.notify.kinds import NotificationKind
from shared.resize import ResizeBounds, get_field, plan_resize
from shared.run_job import link_child_to_parent
from shared.settings import Settings
from shared.state import StateStore
from shared.store import Claim, DecisionStore
from shared.taxonomy import Action

if TYPE_CHECKING:
    from shared.learning.loop import LearningLoop

log = logging.getLogger(__name__)

MAX_DEFERS = 30  # task-level events waiting for their parent run; after that the poller picks the run up
# Runs Databricks starts on its own. The agent's reruns are repairs (repair_count > 0) or run-now (ONE_TIME):
# a run with one of these triggers, never repaired, has no earlier decision in its chain and no rerun link.
UNLINKED_TRIGGERS = frozenset({"PERIODIC", "FILE_ARRIVAL", "CONTINUOUS", "TABLE"})


class Notifier(Protocol):
    # kind None: the decision's own email; the timer passes NotificationKind.OUTCOME when a resized rerun ends.
    def notify(self, record: DecisionRecord, job: Job | None, kind: NotificationKind | None = None) -> list[str]: ...


class Analyzer(Protocol):
    """The LLM step: may refine the rules' classification and write the human part of the diagnosis."""

    def refine(
        self, signals: FailureSignals, classification: Classification, context: dict[str, Any]
    ) -> tuple[Classification, Analysis]: ...


@dataclass
class PipelineDeps:
    """Everything `process` talks to. Built once per worker; replaced piecemeal in tests."""

    settings: Settings
    jobs_api: Callable[[str | None], JobsApi]  # webhook workspace id -> client (BadRequest for unknown ids)
    workspace_key: Callable[[str | None], str]  # webhook workspace id -> the configured workspace's key
    store: DecisionStore
    state: StateStore
    notifier: Notifier
    classify: Classifier
    enqueue: Callable[[FailureEvent, int], None]  # put an event on the queue, visible after N seconds
    analyzer: Analyzer | None = None
    learning: LearningLoop | None = None  # outcomes and feedback (shared/learning); classify already consults it
    incidents: Any = None  # shared.incidents.store.IncidentStore; None: failures are never grouped into incidents
    clock: Callable[[], datetime] = field(default=utcnow)
    # When the oldest message still waiting in job-failures was enqueued (None: none waiting, or unknown); the
    # poller leaves runs that ended after it to the messages ahead of it (shared/poller.py).
    oldest_waiting: Callable[[], datetime | None] | None = None
    # Puts a hand-over on job-failures-llm (shared/handover.py); None: the model is asked in this invocation.
    hand_over: Callable[[str, int], None] | None = None  # (message body, visible after N seconds)


@dataclass(frozen=True)
class Result:
    """What happened to one message (logged, and returned to tests)."""

    status: Literal["decided", "duplicate", "in_progress", "deferred", "skipped", "handed_over"]
    detail: str
    key: str | None = None
    action: Action | None = None


def process(event: FailureEvent, deps: PipelineDeps, *, owner: str, handover: HandOver | None = None) -> Result:
    """Decide about one failed run, at most once per (workspace, run, repair count).

    `owner` identifies this invocation (completion.new_invocation_id), not the message: a second invocation
    of the same message must not pass for the first. `handover`: this is job-failures-llm's message, which
    redeems a claim the first stage handed over (shared/handover.py) instead of claiming afresh.
    """
    api = deps.jobs_api(event.workspace_id)
    if event.incident_id is not None:  # an incident's own clock or one held rerun's release (shared/incidents)
        from shared.incidents.drive import on_event

        return _log(Result("skipped", on_event(event, deps, job_of=read_job)), {"incident_id": event.incident_id})
    run = api.get_run(event.run_id)
    # Keyed by the configured workspace, not the event's id, so a webhook (with an id) and the poller
    # (single workspace, maybe without one) land on the same idempotency key.
    ws = deps.workspace_key(event.workspace_id)
    ctx = {"job_id": run.job_id, "run_id": run.run_id, "source": event.source}
    key = f"{ws}:{run.run_id}:{run.repair_count}"

    # A decision on this run that an earlier invocation left half done (stopped after its repair was sent,
    # say) has the run's old repair count in its key: finish it first, whatever the run shows now.
    finished = completion.finish_run_records(run, api, deps, ws, owner, skip=key, job_of=read_job)

    if not run.terminal:
        # Still running (a task-level event, the parent's own retries, a repair in progress, or TERMINATING
        # right after a job-level event): look again later; whatever it ends as gets its own decision.
        if event.defer_count >= MAX_DEFERS:
            return _log(Result("skipped", "parent still running after every deferral; the poller will pick it up"), ctx)
        deps.enqueue(event.model_copy(update={"defer_count": event.defer_count + 1, "source": "deferred"}),
                   deps.settings.defer_seconds)
        return _log(Result("deferred", f"parent run {run.run_id} is {run.state.life_cycle_state}; looking again later"), ctx)
    if run.state.result_state in SUCCEEDED_RESULT_STATES:
        detail = f"run {run.run_id} ended {run.state.result_state}"
        if finished:
            return _log(Result("decided", f"{detail}; finished {', '.join(finished)}", finished[-1]), ctx)
        return _log(Result("skipped", detail), ctx)
    if run.run_type not in (None, "JOB_RUN"):
        # One-time runs (runs/submit from ADF or Airflow, notebook workflows) belong to their orchestrator,
        # which retries them itself; a repair here would run beside its retry.
        return _log(Result("skipped", f"run {run.run_id} is a {run.run_type}, left to its orchestrator"), ctx)
    if run.is_run_job_child:
        # run_job: one failure, one decision, made on the parent's run (its repair reruns the run_job task, which
        # starts a new child); the child is only linked, or both sides would act (shared/run_job.py).
        return _log(Result("skipped", link_child_to_parent(run, api, deps, event)), ctx)

    chain_id, attempt = _chain_position(run, ws, deps.state)
    # The Jobs API's name before the webhook's: a body's name is whatever its sender wrote.
    record = DecisionRecord(
        key=key, workspace_id=ws, job_id=run.job_id, job_name=run.run_name or event.job_name, run_id=run.run_id,
        repair_count=run.repair_count, chain_id=chain_id, attempt=attempt, run_page_url=run.run_page_url,
        source=event.source,
    )
    if handover is None:
        try:
            early = _decide_then_claim(record, run, api, deps, ws, owner, event)
        except BaseException:
            completion.release(deps, key, owner)  # only if the claim was made, and is this invocation's
            raise
        if isinstance(early, DecisionRecord):
            return _outcome(early, ctx)
        claim = early if early is not None else deps.store.claim(record, owner, now=deps.clock())
    elif handover.key != key:
        # The run was repaired (by someone) since the hand-over: the old record is finished above, or by the timer.
        return _log(Result("skipped", f"the run moved on since the hand-over of {handover.key}", key), ctx)
    else:
        claim = deps.store.take_over(key, owner, handed_to=handover.token, now=deps.clock())
    if not claim.granted:
        if claim.reason == "in_progress" and claim.existing is not None and is_handover_token(claim.existing.claim_owner):
            # Handed to job-failures-llm, whose message finishes it (the timer re-queues it if that was lost).
            return _log(Result("in_progress", "handed to the LLM queue, which decides it", key), ctx)
        if claim.reason == "in_progress":
            return _log(_defer_while_claimed(event, claim, deps, key, llm=handover), ctx)
        return _log(Result("duplicate", "already decided", key), ctx)
    try:
        record = _decide_and_carry_on(claim.record, run, api, deps, ws, owner,
                                      event=event if handover is None else None)
    except BaseException:
        completion.release(deps, key, owner)
        raise
    return _outcome(record, ctx)


def _outcome(record: DecisionRecord, ctx: dict[str, Any]) -> Result:
    """Handed over (still `claimed`, held by the hand-over token), or decided and carried on."""
    if record.status == "claimed":
        return _log(Result("handed_over", "the rules are unsure: handed to the LLM queue", record.key), ctx)
    telemetry.record_decision(record)
    return _log(Result("decided", record.reason, record.key, record.action), {**ctx, **telemetry.dimensions(record)})


def _decide_then_claim(record: DecisionRecord, run: Run, api: JobsApi, deps: PipelineDeps, ws: str, owner: str,
                       event: FailureEvent) -> DecisionRecord | Claim | None:
    """The common path in one write fewer: when the rules are sure, decide first and insert the decision with its
    intent as the claim (nothing has been sent yet, so a lost race only wasted a diagnosis), then carry it on.
    An unsure failure is claimed and handed over without a second diagnosis. A Claim: the key existed (a
    duplicate, a live or stale claim), for the usual path to handle; None: the model would be asked here."""
    if deps.analyzer is not None and deps.hand_over is None:
        return None  # the model would answer before any claim: a duplicate message would pay for it twice
    decided = _diagnose_and_decide(record, run, api, deps, ws, may_hand_over=deps.hand_over is not None)
    if decided is None:
        claim = deps.store.claim(record, owner, now=deps.clock())
        if claim.reason != "new":
            return claim
        assert claim.record is not None
        return hand_over(claim.record, event, deps, owner)
    decided_record, resize_request, chain, job = decided
    intent = actions.plan_intent(decided_record.action, run, workspace_key=ws, resize=resize_request, now=deps.clock())
    claim = deps.store.claim(decided_record.model_copy(update={"intent": intent}), owner, now=deps.clock(),
                             decided=True)
    if claim.reason != "new":
        return claim
    assert claim.record is not None
    return completion.carry_on(claim.record, api, deps, ws, owner, job, chain=chain)

def _decide_and_carry_on(record: DecisionRecord, run: Run, api: JobsApi, deps: PipelineDeps, ws: str,
                         owner: str, *, event: FailureEvent | None = None) -> DecisionRecord:
    """With `event` (job-failures, a hand-over configured): a failure the model must see is handed over instead
    (the record comes back still `claimed`, held by the hand-over token)."""
    if record.status == "claimed":
        may_hand_over = event is not None and deps.hand_over is not None
        decided = _diagnose_and_decide(record, run, api, deps, ws, may_hand_over=may_hand_over)
        if decided is None:
            assert event is not None
            return hand_over(record, event, deps, owner)
        record, resize_request, chain, job = decided
        intent = actions.plan_intent(record.action, run, workspace_key=ws, resize=resize_request, now=deps.clock())
        # The decision and what it is about to send are on record before anything changes in Databricks.
        record = deps.store.save(record.model_copy(update={"intent": intent}), owner=owner)
        return completion.carry_on(record, api, deps, ws, owner, job, chain=chain)
    return completion.carry_on(record, api, deps, ws, owner, read_job(api, run.job_id))


def _defer_while_claimed(event: FailureEvent, claim: Claim, deps: PipelineDeps, key: str,
                         llm: HandOver | None = None) -> Result:
    """Another invocation holds a live claim: look again when it should be done, instead of dropping this.
    A hand-over message waits on its own queue (its token may still redeem a claim that is released later)."""
    if event.defer_count >= MAX_DEFERS:
        return Result("in_progress", "claimed by another invocation after every deferral; the timer finishes it", key)
    left = (claim.held_since + deps.store.lease - deps.clock()).total_seconds() if claim.held_since else 0
    delay = max(1, min(deps.settings.claim_wait_seconds, int(left) + 1))
    later = event.model_copy(update={"defer_count": event.defer_count + 1, "source": "deferred"})
    if llm is not None and deps.hand_over is not None:
        deps.hand_over(handover_message(later, llm), delay)
    else:
        deps.enqueue(later, delay)
    return Result("in_progress", f"another invocation is deciding it; looking again in {delay}s", key)


def _diagnose_and_decide(
    record: DecisionRecord, run: Run, api: JobsApi, deps: PipelineDeps, ws: str, *, may_hand_over: bool = False,
) -> tuple[DecisionRecord, actions.ResizeRequest | None, list[DecisionRecord], Job | None] | None:
    """The decision, the resize it asks for, the chain it was decided on (read once, passed along) and the job's
    settings; None when the model must be asked and may be, in another invocation (shared/handover.py)."""
    settings = deps.settings
    # The classifier sees the attempt: some limits mean more when they persist (a workspace run limit is quota then).
    diagnosis = diagnose(run, api, lambda signals: deps.classify(replace(signals, attempt=record.attempt)))
    classification, analysis = diagnosis.classification, Analysis()
    if may_hand_over and deps.analyzer is not None and _would_ask(deps.analyzer, classification):
        # Before the job's settings are read: the LLM queue reads them (and honours the job's tags) anyway, and
        # jobs/get is the tightest Jobs API budget.
        return None
    job = read_job(api, run.job_id)
    controls = job_controls(job.settings.tags if job else {}, settings.max_retries)
    max_retries = controls.max_retries if controls.max_retries is not None else settings.max_retries
    job_name = (job.settings.name if job else None) or record.job_name

    if deps.analyzer is not None and controls.enabled:
        context = {"job_name": job_name, "attempt": record.attempt, "max_attempts": max_retries + 1,
                   "tasks": [t.task_key for t in diagnosis.failed_tasks], "cluster": _failed_cluster_spec(run, job)}
        classification, analysis = deps.analyzer.refine(diagnosis.signals, classification, context)

    resize_request, blocker = None, None
    if classification.action is Action.RETRY_WITH_NEW_PARAMS:
        # The LLM's spark_conf suggestion was already clamped by its guard; plan_resize clamps it again.
        suggested = analysis.suggested_parameters.get("spark_conf") if analysis.suggested_parameters else None
        resize_request, blocker = _plan_resize(run, job, settings, spark_conf=suggested)
    # A first failure (never repaired, no rerun link) of a record nothing was done for yet has no one else in its
    # chain: only a decision of this run could have started another run into it.
    alone = run.repair_count == 0 and record.chain_id == f"{ws}:{run.run_id}"
    chain = [] if alone else deps.store.chain(ws, record.chain_id)
    if resize_request is not None:
        resize_request = _from_chain_original(resize_request, chain, record.key)
    verdict = decide(DecisionInput(
        category=classification.category,
        proposed=classification.action,
        attempt=record.attempt,
        max_retries=max_retries,
        already_escalated=any(r.action is Action.ESCALATE for r in chain if r.key != record.key),
        agent_enabled=controls.enabled,
        settings_unreadable=job is None and run.job_id is not None,
        termination_code=run.termination.code,
        resize_blocker=blocker,
        confidence=classification.confidence,
        threshold=settings.llm_confidence_threshold,
        llm_outcome=analysis.llm_outcome,
    ))
    verdict = hold_stale(verdict, run, deps.clock(), settings.failure_max_age_hours)
    observe = settings.agent_mode == "observe" or controls.mode == "observe"
    record = record.model_copy(update={
        "job_name": job_name, "failed_tasks": diagnosis.failed_tasks, "category": classification.category,
        "proposed_action": classification.action, "action": verdict.action, "confidence": classification.confidence,
        "reason": verdict.reason, "evidence": list(classification.evidence), "excerpt": classification.excerpt,
        "reason_code": verdict.code.value,
        "fingerprint": classification.fingerprint, "rule_id": classification.rule_id, "analysis": analysis,
        "mode": "observe" if observe else "act", "status": "decided", "decided_at": deps.clock(),
        "max_attempts": max_retries + 1, "agent_enabled": controls.enabled,
        "incident_key": cause_key(ws, classification.category, classification.fingerprint,
                                  termination_code=run.termination.code,
                                  cluster_reason=diagnosis.signals.cluster_reason_code),
    })
    return record, resize_request if verdict.action is Action.RETRY_WITH_NEW_PARAMS else None, chain, job


def _would_ask(analyzer: Analyzer, classification: Classification) -> bool:
    """Whether the analyzer would call the model (an analyzer that cannot say is taken to)."""
    why_ask = getattr(analyzer, "why_ask", None)
    return True if why_ask is None else why_ask(classification) is not None


def _from_chain_original(
    request: actions.ResizeRequest, chain: list[DecisionRecord], key: str
) -> actions.ResizeRequest:
    """A resize on top of an earlier one in the chain takes over its inverse patch: each field it changed goes
    back to the chain's original value, never to the intermediate size."""
    earlier = [r for r in chain if r.key != key and r.resize and not r.resize.reverted
               and r.resize.job_cluster_key == request.job_cluster_key]
    if not earlier:
        return request
    first = earlier[0].resize
    original = {c.field: c.before for c in first.changes}
    now = request.field_changes()
    composed = [FieldChange(field=c.field, before=original.get(c.field, c.before), after=c.after) for c in now]
    composed += [FieldChange(field=f, before=before, after=get_field(request.before, f))
                 for f, before in original.items() if f not in {c.field for c in now}]
    return actions.ResizeRequest(request.job_id, request.job_cluster_key, first.before, request.after,
                                 request.summary, tuple(composed), tuple(now))


def _chain_position(run: Run, ws: str, state: StateStore) -> tuple[str, int]:
    """Which chain this run belongs to, and which attempt this failure is in it.

    Attempts count Databricks' own task retries, repairs of this run (ours or anyone's), and, for runs the
    agent started with run-now, the attempts before them.
    """
    link = None if unlinked(run) else state.get("rerun", f"{ws}:{run.run_id}")
    chain_id, base = (link["chain_id"], int(link["attempt"])) if link else (f"{ws}:{run.run_id}", 1)
    platform_retries = max((t.attempt_number for t in run.failed_tasks()), default=0)
    return chain_id, base + run.repair_count + platform_retries


def unlinked(run: Run) -> bool:
    """Started by Databricks itself and never repaired: its chain is itself alone, so nothing is looked up."""
    return run.repair_count == 0 and run.trigger in UNLINKED_TRIGGERS


def read_job(api: JobsApi, job_id: int | None) -> Job | None:
    """The job's settings (tags, owners' addresses, clusters); None when they cannot be read.

    Callers treat None carefully: the decision then reruns nothing (the tags are unknown), and emails go to
    the default recipients.
    """
    if job_id is None:
        return None
    try:
        return api.get_job(job_id)
    except PermanentError as exc:
        log.warning("job settings not readable", extra={"job_id": job_id, "error": str(exc)})
        return None


def _failed_cluster_spec(run: Run, job: Job | None) -> dict[str, Any] | None:
    """The job-cluster spec of the first failed task that has one (context for the LLM)."""
    keys = [t.cluster_key for t in run.failed_tasks() if t.cluster_key]
    return job.job_cluster(keys[0]) if job and keys else None


def _plan_resize(
    run: Run, job: Job | None, settings: Settings, spark_conf: dict[str, str] | None = None
) -> tuple[actions.ResizeRequest | None, str | None]:
    """The job cluster of the first failed task that has one, one step larger; or why that is impossible."""
    failed = run.failed_tasks()
    # A for_each task's iterations run on its nested task's job cluster (cluster_key): that one is resized.
    keyed = [t for t in failed if t.compute == "job_cluster" and t.cluster_key]
    if not keyed:
        return None, compute.resize_blocker([(t.compute, t.compute_detail) for t in failed])
    if job is None or run.job_id is None:
        return None, "the job's settings could not be read, so its cluster cannot be changed"
    key = keyed[0].cluster_key
    spec = job.job_cluster(key)
    if spec is None:
        return None, f"job cluster '{key}' is not in the job's settings any more"
    bounds = ResizeBounds(settings.node_ladders, settings.resize_max_workers, frozenset(settings.resize_allowed_spark_conf))
    plan = plan_resize(spec, bounds, spark_conf=spark_conf if isinstance(spark_conf, dict) else None)
    if not plan.possible:
        return None, plan.summary
    return actions.ResizeRequest(run.job_id, key, spec, plan.after, plan.summary), None


def _log(result: Result, ctx: dict[str, Any]) -> Result:
    log.info("%s: %s", result.status, result.detail, extra={**ctx, "status": result.status, "key": result.key})
    return result
