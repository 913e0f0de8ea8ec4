"""The agent's models read what the official databricks-sdk writes: field names checked against its dataclasses
(databricks.sdk.service.jobs), not against our own guesses."""

from __future__ import annotations

from databricks.sdk.service import jobs as sdk

from shared.databricks.models import LEGACY_PARAMETER_FIELDS, Run, RunOutput

FAILED = sdk.RunState(life_cycle_state=sdk.RunLifeCycleState.TERMINATED, result_state=sdk.RunResultState.FAILED,
                      state_message="Workload failed, see run output for details")


def test_a_for_each_task_run_its_iterations_and_stats_read_as_the_sdk_writes_them():
    nested = sdk.Task(task_key="per_region_iteration", job_cluster_key="etl",
                      notebook_task=sdk.NotebookTask(notebook_path="/rollup"))
    parent = sdk.RunTask(task_key="per_region", run_id=11, state=FAILED, for_each_task=sdk.RunForEachTask(
        inputs='["a","b"]', task=nested, stats=sdk.ForEachStats(error_message_stats=[
            sdk.ForEachTaskErrorMessageStats(count=1, error_message="[TABLE_OR_VIEW_NOT_FOUND] x")])))
    task_run = sdk.Run(run_id=11, job_run_id=10, iterations=[
        sdk.RunTask(task_key="per_region_iteration", run_id=12, state=FAILED, job_cluster_key="etl")])

    run = Run.model_validate(sdk.Run(run_id=10, job_id=1, tasks=[parent]).as_dict())
    iterations = Run.model_validate(task_run.as_dict()).iterations

    task = run.tasks[0]
    assert task.compute == "job_cluster" and task.cluster_key == "etl"
    assert task.error_message_stats == ["[TABLE_OR_VIEW_NOT_FOUND] x"]
    assert [i.run_id for i in iterations] == [12] and iterations[0].failed


def test_a_run_job_child_and_the_parents_output_read_as_the_sdk_writes_them():
    child = Run.model_validate(sdk.Run(run_id=30, job_id=77, trigger=sdk.TriggerType.RUN_JOB_TASK,
                                       trigger_info=sdk.TriggerInfo(run_id=21)).as_dict())
    output = RunOutput.model_validate(sdk.RunOutput(run_job_output=sdk.RunJobOutput(run_id=30)).as_dict())
    task_run = Run.model_validate(sdk.Run(run_id=21, job_run_id=20).as_dict())

    assert child.is_run_job_child and child.started_by_run_job_task == 21
    assert output.child_run_id == 30
    assert task_run.job_run_id == 20


def test_task_kinds_read_as_the_sdk_writes_them():
    tasks = [
        sdk.RunTask(task_key="q", run_id=1, sql_task=sdk.SqlTask(warehouse_id="w1", query=sdk.SqlTaskQuery(query_id="x"))),
        sdk.RunTask(task_key="p", run_id=2, pipeline_task=sdk.PipelineTask(pipeline_id="p1")),
        sdk.RunTask(task_key="d", run_id=3, dbt_task=sdk.DbtTask(commands=["dbt run"], warehouse_id="w2")),
        sdk.RunTask(task_key="c", run_id=4, condition_task=sdk.RunConditionTask(
            op=sdk.ConditionTaskOp.EQUAL_TO, left="1", right="1")),
        sdk.RunTask(task_key="j", run_id=5, run_job_task=sdk.RunJobTask(job_id=9)),
        sdk.RunTask(task_key="s", run_id=6, environment_key="default"),
        sdk.RunTask(task_key="e", run_id=7, existing_cluster_id="0101"),
    ]
    run = Run.model_validate(sdk.Run(run_id=1, tasks=tasks).as_dict())

    assert [t.compute for t in run.tasks] == ["sql_warehouse", "dlt_pipeline", "sql_warehouse", "condition",
                                              "run_job", "serverless", "existing_cluster"]


def test_every_legacy_parameter_kind_the_sdk_knows_is_re_sent_on_repair():
    import inspect

    sdk_kinds = set(sdk.RunParameters.__dataclass_fields__)
    repair_kinds = set(inspect.signature(sdk.JobsAPI.repair_run).parameters)
    run_now_kinds = set(inspect.signature(sdk.JobsAPI.run_now).parameters)

    assert sdk_kinds <= set(LEGACY_PARAMETER_FIELDS) | {"job_parameters"}
    assert set(LEGACY_PARAMETER_FIELDS) <= repair_kinds and set(LEGACY_PARAMETER_FIELDS) <= run_now_kinds
    overriding = sdk.RunParameters(notebook_params={"d": "1"}, python_params=["--d"], jar_params=["x"],
                                   sql_params={"a": "b"}, python_named_params={"n": "v"},
                                   spark_submit_params=["--conf"], dbt_commands=["dbt run"],
                                   pipeline_params=sdk.PipelineParams(full_refresh=True))
    run = Run.model_validate(sdk.Run(run_id=1, overriding_parameters=overriding).as_dict())

    assert run.repair_parameters() == overriding.as_dict()
