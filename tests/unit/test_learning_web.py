"""The feedback endpoints: the signed link's form and answer, the function-key API, and what they refuse."""

import json
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from shared.decision import DecisionRecord
from shared.learning.feedback import MemoryFeedbackStore
from shared.learning.learned_rules import MemoryLearnedRuleStore
from shared.learning.loop import LearningLoop
from shared.learning.signing import signed_links
from shared.learning.web import signed, submit_json
from shared.store import MemoryDecisionStore
from shared.taxonomy import Action, Category

KEY = b"web-test-signing-key-0123456789abcdef"
NOW = datetime(2026, 1, 10, 12, 0, tzinfo=timezone.utc)
DECISION = "ws:911:0"
FORM = {"content-type": "application/x-www-form-urlencoded"}
JSON = {"content-type": "application/json"}


@pytest.fixture
def world():
    store = MemoryDecisionStore()
    store.save(DecisionRecord(key=DECISION, workspace_id="ws", run_id=911, chain_id="ws:911",
                              job_name="<script>alert(1)</script>", category=Category.NETWORK, action=Action.RETRY,
                              reason="network failure is worth a rerun", evidence=["Connection refused"],
                              fingerprint="0123456789abcdef"))
    loop = LearningLoop(MemoryLearnedRuleStore(), MemoryFeedbackStore(), signing_key=lambda: KEY)
    return loop, store


def link(verdict=None, now=NOW, key=KEY):
    links = signed_links("https://agent.example.com/api/feedback/{key}", DECISION, key, now, timedelta(days=14))
    url = links[{"right": "right", "wrong": "wrong"}.get(verdict, "page")]
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def get(world, params, decision=DECISION):
    loop, store = world
    return signed("GET", decision, params, b"", {}, loop, store, NOW)


def post(world, params, body, headers=FORM, decision=DECISION):
    loop, store = world
    raw = urlencode(body).encode() if headers is FORM else json.dumps(body).encode()
    return signed("POST", decision, params, raw, headers, loop, store, NOW)


def test_the_link_serves_a_form_with_the_verdict_preselected(world):
    answer = get(world, link("wrong"))
    assert answer.status == 200 and answer.mimetype == "text/html"
    assert 'value="false" checked' in answer.body and "network failure is worth a rerun" in answer.body


def test_the_form_escapes_what_the_job_owner_wrote_and_shows_no_key(world):
    body = get(world, link()).body
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;" in body
    assert KEY.decode() not in body


def test_the_page_loads_nothing_and_leaks_no_link_through_the_referrer(world):
    headers = get(world, link()).headers
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert headers["Referrer-Policy"] == "no-referrer" and headers["Cache-Control"] == "no-store"


def test_opening_the_link_records_nothing(world):
    get(world, link("right"))
    assert world[0].feedback.all() == []


def test_an_unsigned_link_is_401_and_an_expired_or_altered_one_403(world):
    assert get(world, {}).status == 401
    assert get(world, link(now=NOW - timedelta(days=15))).status == 403
    assert get(world, link(key=b"forged")).status == 403
    assert get(world, link(), decision="ws:912:0").status == 403
    assert post(world, {}, {"correct": "false", "category": "code"}).status == 401
    assert world[0].feedback.all() == [] and world[0].rules.all() == []


def test_a_correction_through_the_link_is_stored_and_becomes_a_learned_rule(world):
    answer = post(world, link(), {"correct": "false", "category": "code", "by": "ann", "comment": "retired"})
    assert answer.status == 200 and "Thank you" in answer.body
    [rule] = world[0].rules.all()
    assert (rule.category, rule.action, rule.decision_key, rule.corrected_by) == (Category.CODE, Action.SEND_EMAIL,
                                                                                  DECISION, "ann")


def test_a_bad_form_is_shown_again_with_the_field_named(world):
    answer = post(world, link(), {"correct": "false", "category": "gremlins"})
    assert answer.status == 400 and "&#39;category&#39; must be one of" in answer.body


def test_a_json_answer_through_the_link_gets_a_json_reply(world):
    answer = post(world, link(), {"correct": True, "by": "ann"}, headers=JSON)
    assert answer.status == 201 and json.loads(answer.body)["message"].startswith("recorded")
    again = post(world, link(), {"correct": True, "by": "ann"}, headers=JSON)
    assert again.status == 200, "the same answer again is no new answer"


def test_the_api_names_the_missing_field(world):
    loop, store = world
    answer = submit_json(DECISION, b'{"correct": false}', JSON, loop, store, NOW)
    assert answer.status == 400 and json.loads(answer.body)["field"] == "by"


def test_the_api_refuses_what_is_not_a_json_object(world):
    loop, store = world
    for body in (b"not json", b"[1, 2]", b"\xff\xfe", b"{" * 20_000):
        assert submit_json(DECISION, body, JSON, loop, store, NOW).status == 400


def test_the_api_answers_404_for_an_unknown_decision(world):
    loop, store = world
    assert submit_json("ws:404:0", b'{"correct": true, "by": "ann"}', JSON, loop, store, NOW).status == 404


def test_the_api_reports_the_rule_it_made(world):
    loop, store = world
    body = json.dumps({"correct": False, "category": "code", "by": "ann"}).encode()
    reply = json.loads(submit_json(DECISION, body, JSON, loop, store, NOW).body)
    assert reply["rule"] == "learned-0123456789abcdef" and reply["rule_status"] == "active"


def test_a_misconfigured_agent_answers_503_not_a_crash(monkeypatch):
    from shared import runtime
    from shared.exceptions import ConfigError
    from shared.learning import web

    def broken():
        raise ConfigError("invalid settings (1 problem): DATABRICKS_WORKSPACE_URL: not set")

    monkeypatch.setattr(runtime, "deps", broken)
    answer = web.link("GET", DECISION, link(), b"", {})
    assert answer.status == 503 and "DATABRICKS" not in answer.body


def test_unreachable_storage_answers_503_with_retry_after(world, monkeypatch):
    from types import SimpleNamespace

    from shared import runtime
    from shared.exceptions import TransientError
    from shared.learning import web

    loop, store = world

    def down(key):
        raise TransientError("table storage unavailable (read decision): ServiceRequestError")

    store.get = down
    settings = SimpleNamespace(feedback_trust_principal_header=False)
    monkeypatch.setattr(runtime, "deps", lambda: SimpleNamespace(learning=loop, store=store, settings=settings))
    answer = web.api(DECISION, b'{"correct": true, "by": "ann"}', JSON)
    assert answer.status == 503 and answer.headers["Retry-After"] == "60"


def test_the_principal_header_counts_only_when_the_platform_is_trusted_to_set_it(world):
    """Anyone can send X-MS-CLIENT-PRINCIPAL-NAME; only App Service Authentication makes it mean someone."""
    loop, store = world
    store.save(store.get(DECISION).model_copy(update={"category": Category.PERMISSION, "action": Action.SEND_EMAIL}))
    body = json.dumps({"correct": False, "action": "RETRY", "by": "ann"}).encode()
    for who in ("ann@contoso.example", "bob@contoso.example"):
        headers = {**JSON, "x-ms-client-principal-name": who}
        reply = json.loads(submit_json(DECISION, body, headers, loop, store, NOW).body)
    assert reply["rule_status"] == "awaiting_confirmation", "forged headers without Easy Auth are one key holder"
    for who in ("ann@contoso.example", "bob@contoso.example"):
        headers = {**JSON, "x-ms-client-principal-name": who}
        reply = json.loads(submit_json(DECISION, body, headers, loop, store, NOW, trust_principal_header=True).body)
    assert reply["rule_status"] == "active", "two principals the platform verified are two people"
