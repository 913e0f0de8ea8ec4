"""Acting in Databricks: never twice, never a resize left behind by a failed rerun."""

from __future__ import annotations

import pytest

from shared.actions import ResizeRequest, act
from shared.databricks.models import Run
from shared.exceptions import TransientError
from shared.taxonomy import Action

SMALL = {"node_type_id": "Standard_DS3_v2", "num_workers": 2}
LARGE = {"node_type_id": "Standard_DS4_v2", "num_workers": 2}


def run(repairs=0, life="TERMINATED"):
    history = [{"type": "ORIGINAL", "id": 1}] + [{"type": "REPAIR", "id": 500 + i} for i in range(repairs)]
    return Run.model_validate({"run_id": 111, "job_id": 42, "state": {"life_cycle_state": life, "result_state": "FAILED"},
                               "repair_history": history})


class LostAnswer:
    """A repair that Databricks starts, but whose answer times out; `started` says whether it really began."""

    def __init__(self, started: bool):
        self.started = started
        self.updates: list[dict] = []

    def repair_run(self, run_id, *, latest_repair_id, job_parameters=None):
        raise TransientError("read timed out on POST runs/repair")

    def get_run(self, run_id):
        return run(repairs=1, life="RUNNING") if self.started else run()

    def update_job_cluster(self, job_id, key, spec):
        self.updates.append(spec)


RESIZE = ResizeRequest(42, "etl", SMALL, LARGE, "node Standard_DS3_v2 → Standard_DS4_v2")


def test_a_repair_whose_answer_was_lost_is_recognised_not_repeated():
    result = act(Action.RETRY, run(), LostAnswer(started=True), workspace_key="ws", observe=False)
    assert result.outcome == "pending" and result.repair_id == 500


def test_a_repair_that_did_not_start_raises_for_a_retry():
    with pytest.raises(TransientError):
        act(Action.RETRY, run(), LostAnswer(started=False), workspace_key="ws", observe=False)


def test_a_resize_stays_while_its_repair_runs_even_if_the_answer_was_lost():
    api = LostAnswer(started=True)
    result = act(Action.RETRY_WITH_NEW_PARAMS, run(), api, workspace_key="ws", observe=False, resize=RESIZE)
    assert api.updates == [LARGE] and result.resize.after == LARGE


def test_a_resize_is_put_back_when_its_repair_did_not_start():
    api = LostAnswer(started=False)
    with pytest.raises(TransientError):
        act(Action.RETRY_WITH_NEW_PARAMS, run(), api, workspace_key="ws", observe=False, resize=RESIZE)
    assert api.updates == [LARGE, SMALL]
