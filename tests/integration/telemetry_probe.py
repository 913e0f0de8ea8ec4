"""Run in a child process by test_telemetry.py: OpenTelemetry's providers are process-wide and set once."""

from __future__ import annotations

import json
import logging
import sys
from datetime import timedelta

from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from shared import telemetry
from shared.decision import Analysis, DecisionRecord, utcnow
from shared.taxonomy import Action, Category

PLANTED = "dapi0123456789abcdef0123456789abcdef"  # a PAT shape: must never reach the exporter


def main() -> None:
    exporter, reader = InMemoryLogRecordExporter(), InMemoryMetricReader()
    on = telemetry.configure(sys.argv[1] if len(sys.argv) > 1 else None,
                             log_record_processors=[SimpleLogRecordProcessor(exporter)], metric_readers=[reader])
    now = utcnow()
    record = DecisionRecord(key="ws:42:0", workspace_id="ws", job_id=7, run_id=42, chain_id="ws:42",
                            category=Category.NETWORK, action=Action.RETRY, repair_id=9, received_at=now,
                            decided_at=now + timedelta(seconds=3), analysis=Analysis(source="llm", prompt_tokens=900,
                                                                                     completion_tokens=120, cost_usd=0.01))
    logging.getLogger("shared.pipeline").warning("decided with token %s", PLANTED,
                                                 extra=telemetry.dimensions(record))
    telemetry.record_decision(record)
    telemetry.record_emails(sent=2, failed=1)
    telemetry.record_poison("ApiError")
    logs = [{"body": str(item.log_record.body), "attributes": dict(item.log_record.attributes or {})}
            for item in exporter.get_finished_logs()]
    metrics: dict[str, float] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    value = getattr(point, "value", None)
                    metrics[metric.name] = metrics.get(metric.name, 0) + (value if value is not None else point.sum)
    print(json.dumps({"on": on, "logs": logs, "metrics": metrics}, default=str))


if __name__ == "__main__":
    main()
