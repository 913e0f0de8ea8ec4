"""A cloud outage in the simulated workspace: for a while, every cluster launched fails to launch.

While it lasts, each run, repair or run-now *started* that launches a cluster (a job cluster or a task's
new_cluster; for_each iterations too) fails the way Azure Databricks reports a cloud stockout:
life_cycle_state INTERNAL_ERROR, result_state FAILED, termination CLOUD_FAILURE, and a task state message

    Cluster <id> was terminated while waiting on it to be ready: Cluster <id> is in unexpected state
    Terminated: CLOUD_PROVIDER_LAUNCH_FAILURE(CLOUD_FAILURE): azure_error_code:SkuNotAvailable,
    azure_error_message:The requested size for resource '...' is currently not available in location ...

with clusters/get showing termination_reason {code CLOUD_PROVIDER_LAUNCH_FAILURE, type CLOUD_FAILURE,
parameters {azure_error_code, azure_error_message}}. Shapes: the run termination codes of databricks-sdk's
jobs TerminationCodeCode (CLOUD_FAILURE: "a cloud provider issue"), the cluster reason of Azure Databricks'
"Unexpected cluster termination" KB (CLOUD_PROVIDER_LAUNCH_FAILURE: a cloud provider failure when requesting
instances), the wrapper text of ../shared/reference/databricks.md §7 and Azure's SkuNotAvailable message
(https://aka.ms/azureskunotavailable). Runs that launch no cluster (serverless, SQL warehouse, an existing
all-purpose cluster that is already up) are not hit: a VM stockout does not touch them.

A run started during the outage does not use up the outcome scripted for it (script_repair): once the outage
is over, reruns end as their scenario says. The outage is on the workspace clock (sim.advance moves it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from localdev.databricks_sim.errors import invalid
from localdev.databricks_sim.model import ClusterReason, TaskFailure

DEFAULT_TERMINATION_CODE = "CLOUD_FAILURE"
DEFAULT_REASON = "CLOUD_PROVIDER_LAUNCH_FAILURE"
DEFAULT_REASON_TYPE = "CLOUD_FAILURE"
DEFAULT_AZURE_CODE = "SkuNotAvailable"
DEFAULT_MESSAGE = (
    "The requested size for resource '/subscriptions/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d/resourceGroups/"
    "databricks-rg-sim/providers/Microsoft.Compute/virtualMachines/{vm}' is currently not available in location "
    "'westeurope' zones '' for subscription '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d'. Please try another size or "
    "deploy to a different location or zones. See https://aka.ms/azureskunotavailable for details."
)
MAX_SECONDS = 24 * 3600.0


@dataclass(frozen=True)
class Outage:
    """One outage: from `start_ms` to `end_ms` on the workspace clock, and the cause every launch fails with."""

    start_ms: int
    end_ms: int
    termination_code: str = DEFAULT_TERMINATION_CODE
    reason: str = DEFAULT_REASON
    reason_type: str = DEFAULT_REASON_TYPE
    parameters: dict[str, str] = field(default_factory=dict)

    def active(self, now_ms: int) -> bool:
        return self.start_ms <= now_ms < self.end_ms

    def failure(self, cluster_id: str) -> TaskFailure:
        """How a task whose cluster `cluster_id` could not be launched ends."""
        params = {k: v.replace("{vm}", cluster_id.replace("-", "")) for k, v in self.parameters.items()}
        detail = ",".join(f"{k}:{v}" for k, v in params.items())
        message = (f"Cluster {cluster_id} was terminated while waiting on it to be ready: Cluster {cluster_id} is in "
                   f"unexpected state Terminated: {self.reason}({self.reason_type})" + (f": {detail}" if detail else ""))
        return TaskFailure(error=None, termination_code=self.termination_code, termination_type="CLOUD_FAILURE",
                           state_message=message, life_cycle_state="INTERNAL_ERROR",
                           cluster_reason=ClusterReason(self.reason, self.reason_type, params))

    def to_json(self, now_ms: int) -> dict[str, Any]:
        return {"active": self.active(now_ms), "seconds_left": max(0.0, (self.end_ms - now_ms) / 1000),
                "started_ms": self.start_ms, "ends_ms": self.end_ms, "termination_code": self.termination_code,
                "reason": self.reason, "type": self.reason_type, "parameters": dict(self.parameters)}


def outage_from(body: dict[str, Any], now_ms: int) -> Outage:
    """The outage a POST /sim/outage body asks for (400 on a bad one). Body:
    {"seconds": S, "termination_code": "CLOUD_FAILURE", "reason": "CLOUD_PROVIDER_LAUNCH_FAILURE",
     "type": "CLOUD_FAILURE", "azure_error_code": "SkuNotAvailable", "message": "<azure_error_message>"}
    (all but seconds optional; `parameters` replaces azure_error_code/message with any reason parameters)."""
    try:
        seconds = float(body.get("seconds"))
    except (TypeError, ValueError) as exc:
        raise invalid("seconds must be a number of seconds (0 ends the outage).") from exc
    if not 0 <= seconds <= MAX_SECONDS:
        raise invalid(f"seconds must be between 0 and {MAX_SECONDS:g}.")
    names = {"termination_code": DEFAULT_TERMINATION_CODE, "reason": DEFAULT_REASON, "type": DEFAULT_REASON_TYPE}
    values = {}
    for name, default in names.items():
        value = body.get(name, default)
        if not isinstance(value, str) or not value.replace("_", "").isalnum() or not value.isupper():
            raise invalid(f"{name} must be an upper-case code such as {default}.")
        values[name] = value
    parameters = body.get("parameters")
    if parameters is None:
        message = body.get("message", DEFAULT_MESSAGE)
        code = body.get("azure_error_code", DEFAULT_AZURE_CODE)
        if not isinstance(message, str) or not isinstance(code, str):
            raise invalid("message and azure_error_code must be strings.")
        parameters = {"azure_error_code": code, "azure_error_message": message}
    if not isinstance(parameters, dict) or not all(isinstance(v, str) for v in parameters.values()):
        raise invalid("parameters must be an object of strings.")
    return Outage(now_ms, now_ms + int(seconds * 1000), values["termination_code"], values["reason"],
                  values["type"], dict(parameters))
