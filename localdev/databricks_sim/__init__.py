"""A local Databricks workspace (Jobs API 2.2 over HTTP) for the demo and the integration and end-to-end tests.

    from localdev.databricks_sim import DatabricksSimulator, TaskFailure
"""

from localdev.databricks_sim.model import ClusterReason, ForEachFailure, RerunContext, TaskFailure, succeed_if_resized
from localdev.databricks_sim.simulator import DatabricksSimulator, RecordedRequest

__all__ = ["ClusterReason", "DatabricksSimulator", "ForEachFailure", "RecordedRequest", "RerunContext", "TaskFailure", "succeed_if_resized"]
