"""Emails carry signed, expiring feedback links to the agent's own endpoint; the key comes from the secrets."""

import re
from html import unescape
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import SecretStr

from shared.decision import utcnow
from shared.learning.links import link_base, with_link_key
from shared.learning.signing import check_link
from shared.notify.kinds import NotificationKind
from shared.notify.render import render
from shared.notify.sample import sample_record
from shared.secrets import MemorySecretProvider
from shared.settings import Settings
from shared.taxonomy import Action

KEY = "links-test-signing-key-0123456789"


def links_in(html):
    return [unescape(u) for u in re.findall(r'href="([^"]+/api/feedback/[^"]+)"', html)]


def test_the_email_links_are_signed_for_its_decision():
    settings = Settings(website_hostname="agent.azurewebsites.net", feedback_signing_key=SecretStr(KEY))
    record = sample_record(Action.SEND_EMAIL)
    urls = links_in(render(record, NotificationKind.DIAGNOSIS, settings).html)
    assert len(urls) == 3
    for url in urls:
        parts = urlsplit(url)
        assert parts.scheme == "https" and parts.netloc == "agent.azurewebsites.net"
        assert unquote(parts.path.rsplit("/", 1)[1]) == record.key
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        assert check_link(KEY.encode(), record.key, query["exp"], query["sig"], utcnow()).ok
    assert KEY not in render(record, NotificationKind.DIAGNOSIS, settings).html


def test_without_a_key_an_explicit_feedback_url_keeps_its_plain_links():
    settings = Settings(feedback_url="https://forms.example.com/rate")
    html = render(sample_record(Action.SEND_EMAIL), NotificationKind.DIAGNOSIS, settings).html
    assert "https://forms.example.com/rate?key=" in html and "sig=" not in html


def test_the_key_is_read_from_the_secret_its_setting_names():
    settings = with_link_key(Settings(feedback_signing_key_secret_name="fb-key"), MemorySecretProvider({"fb-key": KEY}))
    assert settings.feedback_signing_key.get_secret_value() == KEY


def test_an_unreadable_key_leaves_the_settings_without_one():
    from shared.exceptions import SecretError

    class Down(MemorySecretProvider):
        def _fetch(self, name):
            raise SecretError("vault unreachable")

    assert with_link_key(Settings(), Down()).feedback_signing_key is None


def test_the_links_go_to_the_apps_own_endpoint_unless_feedback_url_says_otherwise():
    assert link_base(Settings(website_hostname="agent.azurewebsites.net")) == \
        "https://agent.azurewebsites.net/api/feedback/{key}"
    assert link_base(Settings(website_hostname="localhost:7071")) == "http://localhost:7071/api/feedback/{key}"
    assert link_base(Settings(website_hostname="a.net", feedback_url="https://x.example.com/f")) == \
        "https://x.example.com/f"
    assert link_base(Settings()) is None


def test_the_signing_key_is_redacted_from_logs_like_every_secret_setting():
    settings = Settings(feedback_signing_key=SecretStr(KEY))
    assert KEY in settings.secret_values()


def doctor_rows(settings, secrets):
    from shared.doctor.checks.feedback import check_feedback
    from shared.doctor.context import DoctorContext

    return list(check_feedback(DoctorContext(env={}, settings=settings, problems=[], secrets=secrets)))


def test_the_doctor_shows_where_the_links_go_and_never_the_key():
    [row] = doctor_rows(Settings(website_hostname="agent.azurewebsites.net"), MemorySecretProvider({
        "feedback-signing-key": KEY}))
    assert row.status == "READY" and "https://agent.azurewebsites.net/api/feedback/{key}" in row.detail
    assert KEY not in row.detail and KEY[-4:] in row.detail


def test_the_doctor_says_how_to_create_a_missing_key_without_failing_the_run():
    [row] = doctor_rows(Settings(website_hostname="agent.azurewebsites.net"), MemorySecretProvider({}))
    assert row.status == "NOT READY" and not row.required and "az keyvault secret set" in row.fix
