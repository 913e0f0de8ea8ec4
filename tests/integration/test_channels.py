"""Teams, Slack and PagerDuty: each payload in its documented shape, sent over HTTP to a local fake of the
service; dedup keys that group a chain; resolve; transient failures retried later, refusals not."""

from __future__ import annotations

import pytest

from localdev.fakes.chat_webhooks import ROUTING_KEY, ChatWebhooks
from shared.decision import DecisionRecord
from shared.notify.channels.message import from_decision, resolved
from shared.notify.channels.route import channels_for, parse_routes
from shared.notify.channels.send import ChannelSender
from shared.notify.exceptions import SendFailed, SendRejected
from shared.taxonomy import Action, Category

PLANTED = "dapi0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def fake():
    with ChatWebhooks() as service:
        yield service


def record(**changes) -> DecisionRecord:
    base = dict(key="ws:42:1", workspace_id="ws", job_id=7, job_name="nightly <b>sales</b>", run_id=42,
                chain_id="ws:41", attempt=4, max_attempts=3, category=Category.INFRASTRUCTURE, action=Action.ESCALATE,
                reason="The retry budget is spent", run_page_url="https://adb-1.2.azuredatabricks.net/jobs/7/runs/42")
    return DecisionRecord(**{**base, **changes})


def sender(fake: ChatWebhooks, name: str) -> ChannelSender:
    url = {"teams": fake.teams_url, "slack": fake.slack_url, "pagerduty": fake.pagerduty_url}[name]
    return ChannelSender(name, url=lambda: url, routing_key=(lambda: ROUTING_KEY) if name == "pagerduty" else None)


def message(**changes):
    return from_decision(record(**changes), "escalation", headline=f"Cluster could not start (token {PLANTED})")


def test_teams_gets_one_adaptive_card_with_the_facts_and_a_link_to_the_run(fake):
    teams = sender(fake, "teams")
    assert teams.send(teams.payload(message())) == "HTTP 202"
    card = fake.received["teams"][-1]["attachments"][0]["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    facts = {f["title"]: f["value"] for f in card["body"][2]["facts"]}
    assert facts["Run"] == "42" and facts["Action"] == "ESCALATE"
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open the run",
                                "url": "https://adb-1.2.azuredatabricks.net/jobs/7/runs/42"}]
    assert PLANTED not in str(card)


def test_slack_gets_block_kit_with_fallback_text_and_escaped_mrkdwn(fake):
    slack = sender(fake, "slack")
    assert slack.send(slack.payload(message())) == "HTTP 200"
    body = fake.received["slack"][-1]
    assert body["text"].startswith("Escalation: nightly <b>sales</b> keeps failing")
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "section", "actions"]
    assert "*Job*\nnightly &lt;b&gt;sales&lt;/b&gt;" in [f["text"] for f in body["blocks"][2]["fields"]]
    assert PLANTED not in str(body)


def test_pagerduty_triggers_with_the_chain_as_dedup_key_then_resolves_it(fake):
    pd = sender(fake, "pagerduty")
    assert pd.send(pd.payload(message())) == "ws:41"
    assert "ws:41" in fake.open_incidents
    event = fake.received["pagerduty"][-1]
    assert event["event_action"] == "trigger" and event["payload"]["severity"] == "critical"
    assert event["payload"]["source"] == "databricks-ai-agent" and event["links"][0]["href"].endswith("/runs/42")
    assert pd.send(pd.payload(resolved(record(), summary="the rerun succeeded"))) == "ws:41"
    assert fake.received["pagerduty"][-1] == {"routing_key": ROUTING_KEY, "event_action": "resolve",
                                              "dedup_key": "ws:41"}
    assert "ws:41" not in fake.open_incidents


def test_two_failures_of_one_chain_share_a_pagerduty_dedup_key(fake):
    pd = sender(fake, "pagerduty")
    first = pd.send(pd.payload(message(key="ws:41:0", run_id=41)))
    second = pd.send(pd.payload(message(key="ws:41:1", run_id=41)))
    assert first == second == "ws:41"


@pytest.mark.parametrize("status", [429, 500, 503])
def test_throttling_and_server_errors_are_transient(fake, status):
    teams = sender(fake, "teams")
    fake.fail_next(status, retry_after=3)
    with pytest.raises(SendFailed):
        teams.send(teams.payload(message()))


def test_an_unreachable_channel_is_transient():
    from localdev.ports import free_port

    gone = ChannelSender("slack", url=lambda: f"http://127.0.0.1:{free_port()}/services/x", timeout=2)
    with pytest.raises(SendFailed):
        gone.send({"text": "x"})


def test_a_refusal_is_permanent(fake):
    wrong = ChannelSender("slack", url=lambda: fake.base + "/services/T/B/wrong")
    with pytest.raises(SendRejected, match="404"):
        wrong.send({"text": "x"})
    bad_key = ChannelSender("pagerduty", url=lambda: fake.pagerduty_url, routing_key=lambda: "short")
    with pytest.raises(SendRejected, match="routing_key"):
        bad_key.send(bad_key.payload(message()))


def test_routes_parse_and_refuse_unknown_kinds_or_channels():
    assert parse_routes("escalation=pagerduty,teams; diagnosis=slack") == {
        "escalation": ("pagerduty", "teams"), "diagnosis": ("slack",)}
    with pytest.raises(ValueError, match="unknown channel 'irc'"):
        parse_routes("escalation=irc")
    with pytest.raises(ValueError, match="kind of"):
        parse_routes("panic=teams")


def test_a_job_tag_picks_among_configured_channels_but_cannot_add_one():
    routes = parse_routes("escalation=pagerduty,teams")
    configured = {"teams", "pagerduty"}
    assert channels_for("escalation", routes, configured) == ("pagerduty", "teams")
    assert channels_for("escalation", routes, configured, {"ai_agent_channels": "teams,slack"}) == ("teams",)
    assert channels_for("escalation", routes, configured, {"ai_agent_channels": "none"}) == ()
    assert channels_for("diagnosis", routes, configured, {"ai_agent_channels": "teams"}) == ()  # not routed
