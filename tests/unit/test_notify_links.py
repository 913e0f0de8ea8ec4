"""Links in emails: clickable only to the workspace and the agent's feedback page; every other URL, domain or
script scheme in error or model text shown defanged, in the text part and in the HTML part."""

from __future__ import annotations

import re
import time

import pytest

from shared.decision import Analysis
from shared.notify import kind_for
from shared.notify.links import allowed_hosts, defang
from shared.notify.render import render
from shared.notify.sample import sample_record
from shared.settings import Settings
from shared.taxonomy import Action

WORKSPACE = "https://adb-1234567890123456.7.azuredatabricks.net"
ALLOWED = allowed_hosts([WORKSPACE, "https://agent.contoso.com/api/feedback"])
SETTINGS = Settings(databricks_workspace_url=WORKSPACE, feedback_url="https://agent.contoso.com/api/feedback")


@pytest.mark.parametrize(("text", "expected"), [
    ("see https://evil.example.com/login now", "see hxxps[:]//evil[.]example[.]com/login now"),
    ("hxxps://evil.com/a", "hxxps[:]//evil[.]com/a"),
    ("visit evil.com or www.evil.co.uk", "visit evil[.]com or www.evil.co[.]uk"),
    ("javascript:alert(1)", "javascript[:]alert(1)"),
    ("JavaScript\uff1aalert(1)", "JavaScript[:]alert(1)"),
    ("https\uff1a//evil.com/x", "hxxps[:]//evil[.]com/x"),
    ("h t t p s : / /evil.com", "h t t p s : / /evil[.]com"),
    ("data:text/html;base64,PHNjcmlwdD4=", "data[:]text/html;base64,PHNjcmlwdD4="),
    ("mail bob@evil.com", "mail bob@evil[.]com"),
    (f"{WORKSPACE}/#job/1/run/2", f"{WORKSPACE}/#job/1/run/2"),
    ("https://agent.contoso.com/api/feedback?key=x", "https://agent.contoso.com/api/feedback?key=x"),
    # Look-alikes are other hosts: a suffix, a prefix, a Cyrillic 'а'.
    ("https://adb-1234567890123456.7.azuredatabricks.net.evil.com/x",
     "hxxps[:]//adb-1234567890123456[.]7[.]azuredatabricks[.]net[.]evil[.]com/x"),
    ("https://\u0430db-1234567890123456.7.azuredatabricks.net/x",
     "hxxps[:]//\u0430db-1234567890123456[.]7[.]azuredatabricks[.]net/x"),
    ("http://10.1.2.3:8080/x", "hxxp[:]//10[.]1[.]2[.]3:8080/x"),
    # Code and table names are not links.
    ("java.lang.OutOfMemoryError in main.sales.orders at notebook.py:12", None),
    ("org.apache.spark.SparkException: Job aborted", None),
])
def test_defang(text, expected):
    assert defang(text, ALLOWED) == (text if expected is None else expected)


def test_defang_is_fast_on_hostile_text():
    for hostile in ("a." * 50_000, "https://" * 20_000, "x.com " * 20_000, "h t t p s : " * 10_000):
        start = time.perf_counter()
        defang(hostile, ALLOWED)
        assert time.perf_counter() - start < 5.0


LURE = ("PermissionError: access denied. Your session expired, sign in again at https://login.evil.example/ms "
        "or hxxps://evil.example/x or portal-azure.com or javascript:alert(1) or https\uff1a//evil2.example")


def _clickable(html: str) -> list[str]:
    return re.findall(r'href="([^"]+)"', html)


@pytest.mark.parametrize("where", ["error", "model"])
def test_no_foreign_link_is_clickable_in_either_part(where):
    record = sample_record(Action.SEND_EMAIL)
    record.run_page_url = f"{WORKSPACE}/#job/42/run/111"
    if where == "error":
        record.failed_tasks[0].error = LURE
        record.excerpt = LURE
        record.evidence = [LURE]
    else:
        record.analysis = Analysis(source="llm", root_cause=LURE, suggested_fix="Go to evil.com/fix and log in.")
    email = render(record, kind_for(record), SETTINGS)
    for part in (email.text, email.html, email.subject):
        for foreign in ("https://login.evil", "login.evil.example/", "hxxps://", "portal-azure.com", "javascript:",
                        "evil.com/", "\uff1a//"):
            assert foreign not in part, (foreign, part[:3000])
    assert all(href.startswith((WORKSPACE, "https://agent.contoso.com/")) for href in _clickable(email.html))
    assert f"{WORKSPACE}/#job/42/run/111" in email.text and f'href="{WORKSPACE}/#job/42/run/111"' in email.html
    assert "portal-azure[.]com" in email.text + email.html  # still readable, not clickable
