"""Who gets an email: the job's on_failure list, else its tag, else the defaults; escalations their own list."""

from __future__ import annotations

import pytest

from shared.databricks.models import Job
from shared.notify import NotificationKind
from shared.notify.exceptions import InvalidAddress
from shared.notify.recipients import resolve_recipients, validate_address
from shared.settings import Settings


def job(on_failure=None, tags=None) -> Job:
    settings = {"name": "nightly_etl", "tags": tags or {}}
    if on_failure is not None:
        settings["email_notifications"] = {"on_failure": on_failure}
    return Job.model_validate({"job_id": 42, "settings": settings})


def settings(**values) -> Settings:
    return Settings(**{"email_default_recipients": ["platform@example.com"], **values})


def test_the_jobs_own_on_failure_addresses_come_first():
    got = resolve_recipients(
        NotificationKind.DIAGNOSIS, job(["owner@example.com"], {"ai_agent_notify": "tag@example.com"}), settings()
    )
    assert got.to == ("owner@example.com",)
    assert got.source == "on_failure"


def test_a_job_tag_names_recipients_when_on_failure_is_empty():
    got = resolve_recipients(
        NotificationKind.DIAGNOSIS, job([], {"ai_agent_notify": "a@example.com, b@example.com;c@example.com"}),
        settings(),
    )
    assert got.to == ("a@example.com", "b@example.com", "c@example.com")
    assert got.source == "tag"


def test_the_tag_name_is_configurable_and_case_insensitive():
    got = resolve_recipients(
        NotificationKind.DIAGNOSIS, job(None, {"Owners": "x@example.com"}), settings(email_recipients_tag="owners")
    )
    assert got.to == ("x@example.com",)


def test_the_default_list_when_the_job_names_nobody():
    got = resolve_recipients(NotificationKind.RETRY, job(), settings())
    assert got.to == ("platform@example.com",)
    assert got.source == "default"


def test_without_job_settings_the_default_list_is_used():
    assert resolve_recipients(NotificationKind.DIAGNOSIS, None, settings()).to == ("platform@example.com",)


def test_escalations_go_to_the_escalation_list_when_there_is_one():
    got = resolve_recipients(
        NotificationKind.ESCALATION, job(["owner@example.com"]),
        settings(email_escalation_recipients=["oncall@example.com"]),
    )
    assert got.to == ("oncall@example.com",)
    assert got.source == "escalation"


def test_escalations_fall_back_to_the_owners_without_an_escalation_list():
    got = resolve_recipients(NotificationKind.ESCALATION, job(["owner@example.com"]), settings())
    assert got.to == ("owner@example.com",)


def test_invalid_addresses_are_dropped_and_reported():
    got = resolve_recipients(
        NotificationKind.DIAGNOSIS, job(["not-an-address", "ok@example.com", "evil@example.com\r\nBcc: x@example.com"]),
        settings(),
    )
    assert got.to == ("ok@example.com",)
    assert "not-an-address" in got.invalid
    assert len(got.invalid) == 2


def test_only_invalid_on_failure_addresses_fall_through_to_the_next_source():
    owners = job(["nobody"], {"ai_agent_notify": "t@example.com"})
    got = resolve_recipients(NotificationKind.DIAGNOSIS, owners, settings())
    assert got.to == ("t@example.com",)


def test_duplicates_are_removed_ignoring_case():
    got = resolve_recipients(NotificationKind.DIAGNOSIS, job(["A@Example.com", "a@example.COM"]), settings())
    assert got.to == ("A@example.com",)


def test_nobody_at_all_is_said_plainly():
    got = resolve_recipients(NotificationKind.DIAGNOSIS, job(), Settings())
    assert got.to == ()
    assert got.source == "none"


@pytest.mark.parametrize(
    "bad",
    ["", "a", "a@b", "a@@example.com", "a b@example.com", "<a@example.com>", "Name <a@example.com>",
     "a@example.com\n", "a@-example.com", "a@example..com", "x" * 65 + "@example.com"],
)
def test_validate_address_refuses_what_is_not_one_plain_mailbox(bad):
    with pytest.raises(InvalidAddress):
        validate_address(bad)


def test_validate_address_keeps_the_local_part_and_lowercases_the_domain():
    assert validate_address("  First.Last+etl@Example.COM ") == "First.Last+etl@example.com"


# --- EMAIL_FALLBACK_RECIPIENTS (formerly EMAIL_DEFAULT_RECIPIENTS) and EMAIL_ALWAYS_COPY --------------------

def test_the_always_copy_list_is_added_to_whoever_gets_the_email_without_duplicates():
    always = settings(email_always_copy=["audit@example.com", "OWNER@example.com"])
    got = resolve_recipients(NotificationKind.DIAGNOSIS, job(["owner@example.com"]), always)
    assert (got.to, got.source) == (("owner@example.com", "audit@example.com"), "on_failure")
    escalation = resolve_recipients(NotificationKind.ESCALATION, job(),
                                    settings(email_escalation_recipients=["lead@example.com"],
                                             email_always_copy=["audit@example.com"]))
    assert escalation.to == ("lead@example.com", "audit@example.com")


def test_with_nobody_else_the_always_copy_list_still_gets_it():
    got = resolve_recipients(NotificationKind.DIAGNOSIS, job(), Settings(email_always_copy=["audit@example.com"]))
    assert (got.to, got.source) == (("audit@example.com",), "always_copy")


def test_the_fallback_list_is_read_under_its_new_name_and_its_old_one():
    from shared.settings.source import reading

    for name in ("EMAIL_FALLBACK_RECIPIENTS", "EMAIL_DEFAULT_RECIPIENTS"):
        with reading({name: "platform@example.com, oncall@example.com"}):
            got = resolve_recipients(NotificationKind.RETRY, job(), Settings())
        assert (got.to, got.source) == (("platform@example.com", "oncall@example.com"), "default"), name


def test_the_always_copy_list_is_configured_not_from_the_job_so_the_allowed_domains_do_not_filter_it():
    got = resolve_recipients(NotificationKind.DIAGNOSIS, job(["owner@elsewhere.org"]),
                             settings(email_allowed_domains=["example.com"], email_always_copy=["audit@audit.org"]))
    assert got.dropped == ("owner@elsewhere.org",)
    assert "audit@audit.org" in got.to and "platform@example.com" in got.to
