"""Acting in Databricks: intent first, recognised after any unclear answer, never sent twice; the revert is
the inverse patch of exactly the fields the resize changed."""

from __future__ import annotations

import copy

import pytest

from shared.actions import ResizeRequest, act, plan_intent, revert_resize
from shared.databricks.errors import DatabricksTimeout, PermissionDenied
from shared.databricks.models import Job, Run
from shared.exceptions import PermanentError, TransientError
from shared.resize import field_changes
from shared.taxonomy import Action

SECRET = "plain-Secret+Key/Value=="  # a plaintext key some teams keep in spark_conf
SMALL = {"node_type_id": "Standard_DS3_v2", "num_workers": 2, "spark_version": "15.4.x-scala2.12",
         "spark_conf": {"fs.azure.account.key.acct.dfs.core.windows.net": SECRET, "spark.sql.shuffle.partitions": "200"}}
LARGE = {**copy.deepcopy(SMALL), "node_type_id": "Standard_DS4_v2"}


class Workspace:
    """One job with one job cluster and one failed run, in memory; answers can be lost after they take effect."""

    def __init__(self, spec=SMALL, repairs=0):
        self.spec = copy.deepcopy(spec)
        self.history = [{"type": "ORIGINAL", "id": 1}] + [{"type": "REPAIR", "id": 500 + i} for i in range(repairs)]
        self.running = False
        self.updates: list[dict] = []
        self.repairs: list[int | None] = []
        self.lose_repair_answer = self.lose_update_answer = False
        self.refuse_repair = None

    def get_run(self, run_id):
        life = "RUNNING" if self.running else "TERMINATED"
        return Run.model_validate({"run_id": 111, "job_id": 42, "repair_history": copy.deepcopy(self.history),
                                   "state": {"life_cycle_state": life, "result_state": None if self.running else "FAILED"}})

    def get_job(self, job_id):
        return Job.model_validate({"job_id": 42, "settings": {"job_clusters": [
            {"job_cluster_key": "etl", "new_cluster": copy.deepcopy(self.spec)}]}})

    def update_job_cluster(self, job_id, key, spec):
        self.updates.append(copy.deepcopy(spec))
        self.spec = copy.deepcopy(spec)
        if self.lose_update_answer:
            raise DatabricksTimeout("no answer", method="POST", path="/jobs/update")

    def repair_run(self, run_id, *, latest_repair_id, job_parameters=None):
        if self.refuse_repair:
            raise self.refuse_repair
        self.repairs.append(latest_repair_id)
        self.history.append({"type": "REPAIR", "id": 500 + len(self.history)})
        self.running = True
        if self.lose_repair_answer:
            raise DatabricksTimeout("no answer", method="POST", path="/jobs/runs/repair")
        return self.history[-1]["id"]


def resize_request(ws):
    before = ws.get_job(42).job_cluster("etl")
    return ResizeRequest(42, "etl", before, {**before, "node_type_id": "Standard_DS4_v2"}, "node DS3 → DS4")


def intent_for(ws, action=Action.RETRY_WITH_NEW_PARAMS):
    return plan_intent(action, ws.get_run(111), workspace_key="ws",
                       resize=resize_request(ws) if action is Action.RETRY_WITH_NEW_PARAMS else None)


def test_a_repair_whose_answer_was_lost_is_recognised_and_not_sent_again():
    ws = Workspace()
    intent = intent_for(ws, Action.RETRY)
    ws.lose_repair_answer = True
    first = act(Action.RETRY, intent, ws, observe=False)
    again = act(Action.RETRY, intent, ws, observe=False)  # a redelivery, or the timer finishing the record
    assert first.repair_id == again.repair_id == 501 and len(ws.repairs) == 1


def test_the_repair_carries_the_latest_repair_id_the_decision_saw():
    ws = Workspace(repairs=2)
    act(Action.RETRY, intent_for(ws, Action.RETRY), ws, observe=False)
    assert ws.repairs == [501]


def test_a_repair_that_did_not_start_raises_for_a_retry_and_keeps_the_resize_for_it():
    ws = Workspace()
    intent = intent_for(ws)
    ws.refuse_repair = TransientError("read timed out before the request was sent")
    with pytest.raises(TransientError):
        act(Action.RETRY_WITH_NEW_PARAMS, intent, ws, observe=False)
    ws.refuse_repair = None
    result = act(Action.RETRY_WITH_NEW_PARAMS, intent, ws, observe=False)  # the retry
    assert len(ws.updates) == 1 and len(ws.repairs) == 1 and result.resize.after["node_type_id"] == "Standard_DS4_v2"


def test_jobs_update_is_compared_before_it_is_written_so_a_retry_never_goes_a_step_further():
    ws = Workspace()
    intent = intent_for(ws)
    ws.lose_update_answer = True  # jobs/update took effect, its answer timed out: read back, not re-sent
    act(Action.RETRY_WITH_NEW_PARAMS, intent, ws, observe=False)
    ws.lose_update_answer = False
    for _ in range(3):  # redeliveries
        act(Action.RETRY_WITH_NEW_PARAMS, intent, ws, observe=False)
    assert len(ws.updates) == 1 and ws.spec["node_type_id"] == "Standard_DS4_v2" and len(ws.repairs) == 1


def test_a_cluster_someone_changed_since_the_decision_is_not_resized():
    ws = Workspace()
    intent = intent_for(ws)
    ws.spec["node_type_id"] = "Standard_E8ds_v5"  # an owner moved the job to another family meanwhile
    with pytest.raises(PermanentError, match="changed by someone else"):
        act(Action.RETRY_WITH_NEW_PARAMS, intent, ws, observe=False)
    assert ws.updates == [] and ws.repairs == []


def test_resize_then_refused_repair_then_revert_keeps_a_plaintext_secret_byte_for_byte():
    ws = Workspace()
    intent = intent_for(ws)
    ws.refuse_repair = PermissionDenied("no CAN_MANAGE_RUN", status=403, error_code="PERMISSION_DENIED")
    with pytest.raises(PermanentError):
        act(Action.RETRY_WITH_NEW_PARAMS, intent, ws, observe=False)
    assert ws.spec == SMALL and all(u["spark_conf"] == SMALL["spark_conf"] for u in ws.updates)


def test_revert_from_a_masked_record_writes_only_the_changed_fields_onto_the_live_spec():
    from shared.store import from_entity, to_entity
    from shared.decision import DecisionRecord

    ws = Workspace()
    result = act(Action.RETRY_WITH_NEW_PARAMS, intent_for(ws), ws, observe=False)
    record = DecisionRecord(key="ws:111:0", workspace_id="ws", run_id=111, chain_id="ws:111", resize=result.resize)
    stored = from_entity(to_entity(record))  # what the decision store gives back: secrets masked
    assert SECRET not in str(stored.resize.model_dump()) and "***" in str(stored.resize.before)
    note = revert_resize(ws, 42, stored.resize)
    assert note.startswith("reverted") and ws.spec == SMALL  # the key survives, byte for byte


def test_a_revert_leaves_the_cluster_alone_once_someone_changed_a_field_the_resize_changed():
    ws = Workspace()
    before = ws.get_job(42).job_cluster("etl")
    after = {**before, "node_type_id": "Standard_DS4_v2", "num_workers": 4}
    ws.spec = copy.deepcopy(after)
    from shared.decision import ResizeChange

    change = ResizeChange(job_cluster_key="etl", before=before, after=after, summary="",
                          changes=field_changes(before, after))
    ws.spec["num_workers"] = 10  # an owner raised the workers by hand after the resize
    note = revert_resize(ws, 42, change)
    assert ws.spec["node_type_id"] == "Standard_DS4_v2" and ws.spec["num_workers"] == 10 and ws.updates == []
    assert "changed by someone else" in note


def test_a_revert_whose_answer_was_lost_is_recognised_not_repeated():
    ws = Workspace()
    result = act(Action.RETRY_WITH_NEW_PARAMS, intent_for(ws), ws, observe=False)
    ws.lose_update_answer = True
    assert revert_resize(ws, 42, result.resize).startswith("reverted")
    ws.lose_update_answer = False
    assert revert_resize(ws, 42, result.resize).startswith("reverted") and ws.spec == SMALL
    assert len(ws.updates) == 2  # the resize and one revert


def test_an_update_that_did_not_take_effect_raises_for_a_retry():
    ws = Workspace()
    intent = intent_for(ws)

    def down(job_id, key, spec):
        raise DatabricksTimeout("no answer", method="POST", path="/jobs/update")

    ws.update_job_cluster = down
    with pytest.raises(TransientError):
        act(Action.RETRY_WITH_NEW_PARAMS, intent, ws, observe=False)
    assert ws.repairs == [] and ws.spec == SMALL


def test_a_sensitive_spark_conf_key_is_never_part_of_a_resize():
    from shared.resize import ResizeBounds, plan_resize

    key = "fs.azure.account.key.acct.dfs.core.windows.net"
    bounds = ResizeBounds([["Standard_DS3_v2", "Standard_DS4_v2"]], 8, frozenset({key}))
    plan = plan_resize(SMALL, bounds, spark_conf={key: "attacker-value"})
    assert plan.after["spark_conf"][key] == SECRET


def test_observe_mode_sends_nothing():
    ws = Workspace()
    result = act(Action.RETRY_WITH_NEW_PARAMS, intent_for(ws), ws, observe=True)
    assert "would have" in result.done and ws.updates == [] and ws.repairs == []
