"""POLL_SCHEDULE is checked as the Functions host reads a timer schedule: NCRONTAB, six fields, seconds first,
each within its range (croniter), without the cron extensions the host refuses."""

from __future__ import annotations

import pytest

from shared.settings import check_settings
from shared.settings.values import ncrontab

BASE = {"AzureWebJobsStorage": "UseDevelopmentStorage=true", "DATABRICKS_HOST": "https://adb-1.azuredatabricks.net"}


@pytest.mark.parametrize("schedule", [
    "0 */5 * * * *", "0 0 * * * *", "0 0 9-17 * * Mon-Fri", "0 30 9 * Jan Mon", "*/10 * * * * *",
    "0 0 7,18 * * *", "0 30 7 * * 1-5", "%POLL_SCHEDULE_OVERRIDE%",
])
def test_schedules_the_host_accepts_pass(schedule):
    assert ncrontab(schedule) == schedule


@pytest.mark.parametrize("schedule, problem", [
    ("99 */5 * * * *", "second field '99' is out of range"),
    ("0 60 * * * *", "minute field '60' is out of range"),
    ("0 0 24 * * *", "hour field '24' is out of range"),
    ("0 0 0 0 * *", "day field '0' is out of range"),
    ("0 0 0 * 13 *", "month field '13' is out of range"),
    ("0 0 0 * * 7", "day of week field '7' is out of range"),
    ("0 0 0 * * Funday", "day of week field 'Funday' is not NCRONTAB"),
    ("0 0 0 L * *", "day field 'L' is not NCRONTAB"),
    ("0 0 0 * * 1#2", "day of week field '1#2' is not NCRONTAB"),
    ("H 0 * * * *", "second field 'H' is not NCRONTAB"),
    ("*/5 * * * *", "six fields, seconds first"),
    ("0 */5 * * * * *", "six fields, seconds first"),
])
def test_schedules_the_host_refuses_are_named_with_the_bad_field(schedule, problem):
    with pytest.raises(ValueError, match=problem.replace("*", r"\*")):
        ncrontab(schedule)
    _, problems = check_settings({**BASE, "POLL_SCHEDULE": schedule})
    assert [p.setting for p in problems] == ["POLL_SCHEDULE"]


def test_the_local_runner_refuses_a_timer_with_a_bad_schedule():
    import azure.functions as func

    from localdev.host import LocalFunctionsHost
    from localdev.host.exceptions import InvalidScheduleError

    app = func.FunctionApp()

    @app.timer_trigger(arg_name="timer", schedule="%POLL_SCHEDULE%")
    def tick(timer: func.TimerRequest) -> None:
        pass

    with pytest.raises(InvalidScheduleError, match="second field '99'"):
        LocalFunctionsHost(app, "UseDevelopmentStorage=true", {}, {"POLL_SCHEDULE": "99 */5 * * * *"})
