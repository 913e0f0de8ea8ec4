"""Databricks: one cheap authenticated Jobs API call per configured workspace."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from shared.doctor.context import NOT_READY, READY, CheckResult, DoctorContext, host, shown
from shared.exceptions import ConfigError, SecretError
from shared.settings.docs import DOCS
from shared.workspaces import workspace_client_secret, workspace_pat


def check_databricks(ctx: DoctorContext) -> Iterable[CheckResult]:
    s = ctx.settings
    problems = s.problems_for("databricks")
    workspaces = s.workspaces()
    if problems or not workspaces:
        yield CheckResult("Databricks", NOT_READY, "; ".join(map(str, problems)) or "no workspace configured",
                          f"set DATABRICKS_HOST (or DATABRICKS_WORKSPACES), see {DOCS}")
        if not workspaces:
            return
    for workspace in workspaces:
        yield _check_workspace(ctx, workspace)


def _check_workspace(ctx: DoctorContext, workspace: Any) -> CheckResult:
    from shared.databricks.client import RetryPolicy, build_jobs_api
    from shared.databricks.errors import (
        DatabricksConnectionError,
        DatabricksError,
        PermissionDenied,
        TokenUnavailable,
        Unauthenticated,
    )

    name = f"Databricks {workspace.workspace_id or host(workspace.url)}"
    try:
        pat = workspace_pat(workspace, ctx.secret_provider())
        client_secret = workspace_client_secret(workspace, ctx.secret_provider())
    except (SecretError, ConfigError) as exc:
        what = "OAuth secret" if workspace.auth == "oauth-m2m" else "PAT"
        return CheckResult(name, NOT_READY, f"no {what}: {exc}",
                           f"store the {what} in the secret it names (Key Vault, or the environment locally), "
                           "or use DATABRICKS_AUTH=entra")
    how = {
        "pat": f"PAT {shown(pat)}",
        "oauth-m2m": f"OAuth M2M, client {workspace.client_id}, secret {shown(client_secret)}",
    }.get(workspace.auth, "Entra ID (managed identity)")
    retry = RetryPolicy(retries=0, budget=ctx.timeout)
    try:
        client = build_jobs_api(workspace, timeout=ctx.timeout, pat_token=pat, client_secret=client_secret,
                                azure_client_id=ctx.settings.azure_client_id, retry=retry)
        try:
            # runs/list from now on: one cheap authenticated GET that returns nothing.
            next(iter(client.list_runs(start_time_from=int(time.time() * 1000))), None)
        finally:
            client.close()
    except (Unauthenticated, PermissionDenied) as exc:
        # runs/list needs no permission beyond being a workspace user: a refusal here is about the credential.
        return CheckResult(name, NOT_READY, f"{workspace.url} refused the credentials ({how}): {exc}",
                           "use a valid, unexpired PAT; for OAuth M2M or Entra, add the service principal (or the "
                           "managed identity) to the workspace")
    except TokenUnavailable as exc:
        if workspace.auth == "oauth-m2m":
            return CheckResult(name, NOT_READY, f"no OAuth token ({how}): {exc}",
                               "check DATABRICKS_CLIENT_ID and the OAuth secret (Databricks: the service principal "
                               "→ Secrets; each secret expires), and that the principal is in this workspace")
        return CheckResult(name, NOT_READY, f"no Entra ID token for Databricks: {exc}",
                           "check AZURE_CLIENT_ID and the managed identity (locally: az login)")
    except DatabricksConnectionError as exc:
        return CheckResult(name, NOT_READY, f"cannot reach {workspace.url} ({how}): {exc}",
                           "check DATABRICKS_HOST and the network path to the workspace")
    except (DatabricksError, ConfigError) as exc:
        return CheckResult(name, NOT_READY, f"{workspace.url} ({how}): {exc}",
                           "check the workspace URL and credentials")
    return CheckResult(name, READY, f"{workspace.url}: Jobs API answered ({how})")
