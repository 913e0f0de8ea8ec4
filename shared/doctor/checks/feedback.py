"""The emails' feedback links: where they go and whether the key that signs them can be read (optional)."""

from __future__ import annotations

from collections.abc import Iterable

from shared.doctor.context import NOT_READY, READY, SKIPPED, CheckResult, DoctorContext, first_line, shown
from shared.exceptions import AgentError


def check_feedback(ctx: DoctorContext) -> Iterable[CheckResult]:
    from shared.learning.links import link_base

    s = ctx.settings
    base = link_base(s)
    if not base:
        yield CheckResult("feedback links", SKIPPED, "no FEEDBACK_URL and no WEBSITE_HOSTNAME: emails carry no links",
                          "set FEEDBACK_URL (in Azure, WEBSITE_HOSTNAME is set for you)", required=False)
        return
    name = s.feedback_signing_key_secret_name
    try:
        key = (s.feedback_signing_key.get_secret_value() if s.feedback_signing_key
               else ctx.secret_provider().get_optional(name))
    except AgentError as exc:
        yield CheckResult("feedback links", NOT_READY, f"signing key {name!r} not readable: {first_line(exc)}",
                          "give the app's identity Key Vault Secrets User on the vault", required=False)
        return
    if not key:
        yield CheckResult("feedback links", NOT_READY, f"no signing key (secret {name!r}): emails carry no links",
                          f"create it: az keyvault secret set --vault-name <vault> --name {name} "
                          '--value "$(openssl rand -base64 32)"', required=False)
        return
    yield CheckResult("feedback links", READY,
                      f"signed links to {base}, valid {s.feedback_link_days} days (key {shown(key)})")
