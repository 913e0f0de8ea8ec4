"""Feedback links are signed and expire: an altered, foreign, unsigned or old link does not work."""

from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

from shared.learning.signing import check_link, signature, signed_links

KEY = b"test-signing-key-0123456789"
NOW = datetime(2026, 1, 10, 12, 0, tzinfo=timezone.utc)
DECISION = "1234:911:0"


def params(url):
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def link(now=NOW, lifetime=timedelta(days=14), base="https://agent.example.com/api/feedback/{key}"):
    return signed_links(base, DECISION, KEY, now, lifetime)


def test_a_link_signed_for_a_decision_works_until_it_expires():
    p = params(link()["page"])
    assert check_link(KEY, DECISION, p["exp"], p["sig"], NOW).status == 200
    assert check_link(KEY, DECISION, p["exp"], p["sig"], NOW + timedelta(days=15)).status == 403


def test_the_decision_key_goes_into_the_path_url_encoded():
    assert link()["page"].startswith("https://agent.example.com/api/feedback/1234%3A911%3A0?exp=")


def test_a_base_without_a_placeholder_carries_the_key_as_a_parameter():
    p = params(link(base="https://agent.example.com/api/feedback")["right"])
    assert p["key"] == DECISION and p["verdict"] == "right"


def test_a_link_for_another_decision_is_refused():
    p = params(link()["page"])
    assert check_link(KEY, "1234:912:0", p["exp"], p["sig"], NOW).status == 403


def test_a_later_expiry_written_into_the_link_breaks_its_signature():
    p = params(link()["page"])
    check = check_link(KEY, DECISION, str(int(p["exp"]) + 86400 * 365), p["sig"], NOW)
    assert check.status == 403 and "signature" in check.reason


def test_a_link_signed_with_another_key_is_refused():
    p = params(signed_links("https://x.example.com/{key}", DECISION, b"another key", NOW, timedelta(days=1))["page"])
    assert check_link(KEY, DECISION, p["exp"], p["sig"], NOW).status == 403


def test_an_unsigned_link_is_unauthenticated():
    assert check_link(KEY, DECISION, None, None, NOW).status == 401
    assert check_link(KEY, DECISION, "1768046400", "", NOW).status == 401


def test_a_malformed_expiry_is_refused_not_crashed_on():
    assert check_link(KEY, DECISION, "tomorrow", signature(KEY, DECISION, 1), NOW).status == 403


def test_without_a_key_no_link_is_accepted():
    p = params(link()["page"])
    assert check_link(None, DECISION, p["exp"], p["sig"], NOW).status == 403
