"""The agent's settings: one typed object read from the environment (app settings / local.settings.json).

Names follow Databricks unified authentication where it has them (DATABRICKS_HOST, DATABRICKS_TOKEN,
DATABRICKS_CLIENT_ID; the original design's DATABRICKS_WORKSPACE_URL and DATABRICKS_PAT_TOKEN stay as
aliases), else the original design's (MAX_RETRIES, EMAIL_* ...).
`load_settings()` validates everything at once and raises one ConfigError listing every problem, each named
by its environment name (MAX_RETRIES, not max_retries): malformed and out-of-range values, unresolved Key
Vault references, DATABRICKS_WORKSPACES problems, and settings a feature needs but does not have.
Each field's description is the documentation (docs/configuration.md, local.settings.json.example: see
docs). Beside this module are the checks of one value (values, workspaces), of several (problems) and of all
at once (check, which also holds load_settings).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from shared.settings.problems import FEATURES, InvalidSettings, SettingProblem, feature_problems
from shared.settings.source import EnvironmentSettings
from shared.settings.values import (
    KEY_VAULT_REFERENCE_FIX,
    KEY_VAULT_REFERENCE_PREFIX,
    SECRET_NAME_PATTERN,
    CommaList,
    databricks_auth_type,
    databricks_host,
    email_addresses,
    email_domains,
    http_url,
    https_url,
    ladders,
    ncrontab,
    no_key_vault_reference,
    node_type_ladders,
    split_commas,
    upper_case,
    workspace_id,
)
from shared.settings.workspaces import WorkspaceConfig, configured_workspaces, workspaces_json



class Settings(EnvironmentSettings):
    """Every setting the app reads. Field descriptions are the README's configuration table."""

    # Empty values count as unset: App Service and local.settings.json often hold "" for "not configured".
    model_config = SettingsConfigDict(
        case_sensitive=False, extra="ignore", populate_by_name=True, env_ignore_empty=True
    )

    # --- Databricks ---------------------------------------------------------------------------------
    databricks_workspace_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABRICKS_HOST", "DATABRICKS_WORKSPACE_URL"),
        description="URL of the one Databricks workspace, https://adb-<id>.<n>.azuredatabricks.net (https:// is "
        "added when left out). DATABRICKS_HOST as in Databricks unified authentication (CLI, SDKs, Terraform); "
        "DATABRICKS_WORKSPACE_URL is accepted as an alias.",
    )
    databricks_pat_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABRICKS_TOKEN", "DATABRICKS_PAT_TOKEN"),
        description="Personal access token for that workspace (in Azure: a Key Vault reference); "
        "DATABRICKS_PAT_TOKEN is accepted as an alias. Unset with DATABRICKS_AUTH=pat: read from the secret "
        "named by DATABRICKS_PAT_SECRET_NAME. For automation Databricks recommends OAuth M2M (below) over a PAT.",
    )
    databricks_auth: Literal["pat", "entra", "oauth-m2m"] | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABRICKS_AUTH", "DATABRICKS_AUTH_TYPE"),
        description="pat (a personal access token), oauth-m2m (a service principal's OAuth secret: "
        "DATABRICKS_CLIENT_ID / DATABRICKS_CLIENT_SECRET) or entra (the app's managed identity, added to the "
        "workspace as a service principal). Unset: pat when DATABRICKS_TOKEN is set, else oauth-m2m when "
        "DATABRICKS_CLIENT_ID is set, else entra. DATABRICKS_AUTH_TYPE is accepted as an alias (azure-msi and "
        "azure-cli mean entra).",
    )
    databricks_workspace_id: str | None = Field(
        default=None,
        description="Numeric id of that workspace; webhooks carrying another id are rejected. Unset: any id.",
    )
    databricks_workspaces: str | None = Field(
        default=None,
        description="Several workspaces, as a JSON list instead of the single-workspace DATABRICKS_* settings: "
        '[{"workspace_id": "123", "url": "https://...", "auth": "pat", "pat_secret_name": "ws123-pat"}, '
        '{"workspace_id": "456", "url": "https://...", "auth": "oauth-m2m", "client_id": "...", '
        '"client_secret_name": "ws456-oauth"}, {"workspace_id": "789", "url": "https://...", "auth": "entra"}].',
    )
    databricks_pat_secret_name: str = Field(
        default="databricks-pat",
        pattern=SECRET_NAME_PATTERN,
        description="Secret (Key Vault, or the environment locally) holding the PAT when DATABRICKS_AUTH=pat and "
        "DATABRICKS_TOKEN is not set.",
    )
    databricks_client_id: str | None = Field(
        default=None,
        description="OAuth M2M: the Databricks service principal's client (application) id. The agent gets a "
        "token from <host>/oidc/v1/token with it and DATABRICKS_CLIENT_SECRET, and renews it before it expires.",
    )
    databricks_client_secret: SecretStr | None = Field(
        default=None,
        description="OAuth M2M: the service principal's OAuth secret (in Azure: a Key Vault reference). Unset: "
        "read from the secret named by DATABRICKS_CLIENT_SECRET_NAME.",
    )
    databricks_client_secret_name: str = Field(
        default="databricks-client-secret",
        pattern=SECRET_NAME_PATTERN,
        description="Secret (Key Vault, or the environment locally) holding the OAuth secret when "
        "DATABRICKS_AUTH=oauth-m2m and DATABRICKS_CLIENT_SECRET is not set.",
    )
    databricks_http_timeout_seconds: float = Field(
        default=30.0, gt=0, le=300, description="Timeout of each Jobs API call, in seconds."
    )
    azure_client_id: str | None = Field(
        default=None,
        description="Client id of the user-assigned managed identity used for Databricks (entra), Key Vault "
        "and storage. Unset: DefaultAzureCredential (system identity, or your az login locally).",
    )

    # --- Decisions and actions ----------------------------------------------------------------------
    agent_mode: Literal["act", "observe"] = Field(
        default="act", description="act, or observe: decide, record and notify, but change nothing in Databricks."
    )
    max_retries: int = Field(
        default=3, ge=0, le=10, description="Agent attempts per chain of failures before it escalates (0-10)."
    )
    resize_node_ladders: str = Field(
        default=(
            "Standard_DS3_v2,Standard_DS4_v2,Standard_DS5_v2;"
            "Standard_D4ds_v5,Standard_D8ds_v5,Standard_D16ds_v5,Standard_D32ds_v5;"
            "Standard_E4ds_v5,Standard_E8ds_v5,Standard_E16ds_v5,Standard_E32ds_v5"
        ),
        description="Node-type ladders for a resize: ';' between families, ',' between sizes, smallest first.",
    )
    resize_max_workers: int = Field(
        default=16, ge=1, le=1000, description="Upper bound on a cluster's workers after a resize (1-1000)."
    )
    resize_allowed_spark_conf: CommaList = Field(
        default_factory=lambda: ["spark.sql.autoBroadcastJoinThreshold", "spark.sql.shuffle.partitions"],
        description="Comma-separated spark_conf keys a resize (or the LLM) may change.",
    )
    resize_revert: bool = Field(
        default=True, description="Revert a resized job cluster to its original spec once its rerun has ended."
    )

    # --- Exactly once (claims, intents, recognition) ----------------------------------------------------
    claim_wait_seconds: int = Field(
        default=10, ge=1, le=600,
        description="A message about a run another invocation is deciding right now is looked at again after "
        "this many seconds (at most until that invocation's claim lease ends).",
    )

    # --- Timer (poller) -----------------------------------------------------------------------------
    poll_schedule: str = Field(
        default="0 */5 * * * *", description="NCRONTAB schedule of the poller (six fields, seconds first)."
    )
    poll_lookback_minutes: int = Field(
        default=60, ge=1, le=60 * 24 * 7, description="First poll of a workspace: how far back to look, in minutes."
    )
    poll_overlap_minutes: int = Field(
        default=10, ge=0, le=24 * 60, description="Each poll re-reads this many minutes before its checkpoint."
    )
    poll_max_run_hours: int = Field(
        default=12, ge=1, le=24 * 7,
        description="Longest a job run takes: runs/list filters on start time, so the poller looks this far back "
        "for runs that ended since its checkpoint.",
    )
    defer_seconds: int = Field(
        default=60, ge=1, le=3600, description="Delay before a deferred event (parent run still running) is re-read."
    )
    claim_lease_seconds: int = Field(
        default=600, ge=600, le=86400,
        description="After this many seconds a stuck claim on a run can be taken over; at least host.json's "
        "functionTimeout (10 min), or a live worker's claim could be taken and the run acted on twice.",
    )

    # --- Poller at scale and poison (shapes) --------------------------------------------------------
    poll_time_budget_seconds: int = Field(
        default=240, ge=10, le=480,
        description="Longest one timer tick lists runs, in seconds; well under functionTimeout (10 min). A busy "
        "workspace's listing stops there, its place saved page by page, and the next tick carries on.",
    )
    poll_settle_minutes: int = Field(
        default=2, ge=0, le=60,
        description="The poller leaves runs that ended this recently to their webhook (a message for them is "
        "probably waiting in the queue); the next tick looks at them.",
    )
    poison_retry_minutes: int = Field(
        default=30, ge=1, le=7 * 24 * 60,
        description="A failure that went to the poison queue for a transient reason (Jobs API or storage down) is "
        "queued again by the poller this many minutes later, once its workspace answers again.",
    )
    poison_max_requeues: int = Field(
        default=3, ge=0, le=20,
        description="How many times the poller queues one poisoned failure again (0: never; "
        "`python -m shared poison requeue` still can).",
    )

    # --- Webhook ------------------------------------------------------------------------------------
    webhook_username: str | None = Field(
        default=None,
        description="Basic-auth user name of the Databricks notification destination. Set with "
        "WEBHOOK_PASSWORD; required with AGENT_MODE=act (else the webhook answers 503) unless every workspace "
        "has its own (webhook_username in DATABRICKS_WORKSPACES); optional in observe mode.",
    )
    webhook_password: SecretStr | None = Field(
        default=None,
        description="Basic-auth password of the notification destination (in Azure: a Key Vault reference).",
    )

    # --- Security: freshness and recipients ---------------------------------------------------------
    failure_max_age_hours: float = Field(
        default=6, gt=0, le=24 * 30,
        description="A failure whose run ended longer ago than this is recorded and reported, never rerun (a "
        "replayed webhook, a poller catching up after an outage). Keep it above the poller's overlap and the "
        "deferrals (minutes).",
    )
    email_allowed_domains: CommaList = Field(
        default_factory=list,
        description="Comma-separated domains that addresses from job settings and tags (on_failure, the "
        "recipients tag) may be in; a subdomain counts (contoso.com admits eu.contoso.com). Others are dropped, "
        "the drop recorded and shown to EMAIL_FALLBACK_RECIPIENTS. Unset: any domain.",
    )
    _split_domains = field_validator("email_allowed_domains", mode="before")(split_commas)
    _domains = field_validator("email_allowed_domains")(email_domains)

    # --- Storage ------------------------------------------------------------------------------------
    storage_connection_string: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("AzureWebJobsStorage", "STORAGE_CONNECTION_STRING"),
        description="Storage connection string for queues and tables (local: UseDevelopmentStorage=true). "
        "Unset in Azure, where the identity and the service URIs below are used.",
    )
    storage_account_name: str | None = Field(
        default=None,
        validation_alias=AliasChoices("AzureWebJobsStorage__accountName", "STORAGE_ACCOUNT_NAME"),
        description="Identity-based storage: the account name (public cloud); the queue and table URIs follow.",
    )
    storage_queue_service_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("AzureWebJobsStorage__queueServiceUri", "STORAGE_QUEUE_SERVICE_URI"),
        description="Identity-based storage: https://<account>.queue.core.windows.net.",
    )
    storage_table_service_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("AzureWebJobsStorage__tableServiceUri", "STORAGE_TABLE_SERVICE_URI"),
        description="Identity-based storage: https://<account>.table.core.windows.net.",
    )
    decisions_table: str = Field(
        default="agentdecisions", pattern=r"^[A-Za-z][A-Za-z0-9]{2,62}$", description="Table of decision records."
    )
    state_table: str = Field(
        default="agentstate",
        pattern=r"^[A-Za-z][A-Za-z0-9]{2,62}$",
        description="Table of the agent's own state (poller checkpoints, caches).",
    )
    outbox_table: str = Field(
        default="agentoutbox", pattern=r"^[A-Za-z][A-Za-z0-9]{2,62}$", description="Table of notifications to send."
    )

    # --- Jobs API request limit --------------------------------------------------------------------
    databricks_requests_per_second: float = Field(
        default=16.0, gt=0, le=1000,
        description="Jobs API requests per second the agent allows itself per workspace and per endpoint, all "
        "instances together, for jobs/get, jobs/list, run-now, repair, cancel (Databricks documents about 20/s "
        "per endpoint for jobs get/list/run-now); runs reads and job writes have their own budgets below.",
    )
    databricks_request_burst: int = Field(
        default=2, ge=1, le=1000,
        description="Requests an idle instance may send at once before the rate applies (at most a fifth of its "
        "share, and taken out of it: no one-second window exceeds the budget).",
    )
    functions_max_instances: int = Field(
        default=1, ge=1, le=1000,
        description="The Function App's maximum instance count (the deployment sets it from Bicep's "
        "maximumInstanceCount; a local run is one instance): the per-workspace rate is divided by it, so every "
        "instance together stays under DATABRICKS_REQUESTS_PER_SECOND.",
    )

    # --- queues (issue 13: the LLM queue, Jobs API budgets per endpoint class) -------------------------
    llm_queue_enabled: bool = Field(
        default=True,
        description="Failures the rules are unsure about are handed to the job-failures-llm queue with their claim, "
        "so the model's answer never holds a job-failures slot; false: the model is asked in the first invocation.",
    )
    databricks_runs_requests_per_second: float = Field(
        default=50.0, gt=0, le=1000,
        description="Per workspace, all instances together: runs/get, runs/get-output, runs/list and clusters/get "
        "(Databricks documents about 100/s for runs/get). Divided by FUNCTIONS_MAX_INSTANCES like the others.",
    )
    databricks_job_writes_per_second: float = Field(
        default=5.0, gt=0, le=1000,
        description="Per workspace, all instances together: jobs/update, jobs/reset, jobs/delete (Databricks "
        "documents about 10/s). Every other Jobs API call counts against DATABRICKS_REQUESTS_PER_SECOND.",
    )

    # --- Secrets ------------------------------------------------------------------------------------
    key_vault_url: str | None = Field(
        default=None,
        description="https://<vault>.vault.azure.net: read the *_SECRET_NAME secrets from this vault. Unset: "
        "read them from the environment (secret databricks-pat = variable DATABRICKS_PAT).",
    )
    secret_cache_seconds: int = Field(
        default=300,
        ge=0,
        le=86400,
        description="How long a secret read from Key Vault is kept in memory, in seconds (0: no cache).",
    )
    # --- Azure OpenAI -------------------------------------------------------------------------------
    azure_openai_endpoint: str | None = Field(
        default=None, description="https://<resource>.openai.azure.com; unset: rules only, no LLM."
    )
    azure_openai_api_key: SecretStr | None = Field(
        default=None, description="API key (in Azure: a Key Vault reference); unset: Entra ID (the app's identity)."
    )
    azure_openai_api_key_secret_name: str = Field(
        default="azure-openai-api-key",
        pattern=SECRET_NAME_PATTERN,
        description="Secret holding the API key when AZURE_OPENAI_API_KEY is not set; not found: Entra ID.",
    )
    azure_openai_deployment: str | None = Field(default=None, description="Chat model deployment name.")
    azure_openai_model: str | None = Field(default=None, description="Model name (for the cache key and prices).")
    azure_openai_api_version: str = Field(default="2024-10-21", description="Azure OpenAI REST API version.")
    llm_confidence_threshold: float = Field(
        default=0.75, ge=0, le=1, description="Ask the LLM when the rules' confidence is below this (0-1)."
    )
    llm_timeout_seconds: float = Field(default=20.0, gt=0, le=120, description="Timeout of one LLM call, in seconds.")
    llm_ask_for_emails: bool = Field(
        default=False,
        description="Also ask the LLM when the rules are sure but a person must fix the failure (SEND_EMAIL), "
        "to write the root cause and fix; the rules' verdict stands.",
    )
    llm_may_override: Literal["unsure", "unknown", "never"] = Field(
        default="unsure",
        description="When the LLM may change the rules' category: unsure (rules said unknown or were below "
        "LLM_CONFIDENCE_THRESHOLD), unknown (only unknown), never (it only explains).",
    )
    llm_max_prompt_tokens: int = Field(
        default=1800, ge=1600, le=16000,
        description="Upper bound on one prompt's estimated tokens (characters/3, an overestimate; schema "
        "included); the error excerpt is trimmed to fit.",
    )
    llm_max_completion_tokens: int = Field(
        default=500, ge=100, le=4000, description="max_tokens of one LLM answer; a longer answer counts as truncated."
    )
    llm_price_prompt_per_1k: float = Field(
        default=0.0025, ge=0, description="Price of 1,000 prompt tokens in USD (your deployment's price), for cost figures."
    )
    llm_price_completion_per_1k: float = Field(
        default=0.01, ge=0, description="Price of 1,000 completion tokens in USD, for cost figures."
    )
    llm_daily_max_calls: int = Field(
        default=500, ge=0, description="LLM calls per UTC day, all workers together (approximate); then rules only. 0: no cap."
    )
    llm_daily_budget_usd: float = Field(
        default=5.0, ge=0, description="Estimated LLM cost per UTC day in USD; then rules only. 0: no cap."
    )
    llm_cache_ttl_hours: int = Field(
        default=168, ge=0, le=24 * 365,
        description="How long an LLM answer is reused for the same failure fingerprint, in hours. 0: no cache.",
    )

    # --- Email --------------------------------------------------------------------------------------
    email_enabled: bool = Field(default=False, description="Send email; off: notifications are only recorded.")
    email_transport: Literal["smtp", "acs", "file", "table"] = Field(
        default="smtp", description="smtp, acs (Azure Communication Services), file (local), or table (outbox only)."
    )
    email_sender: str | None = Field(default=None, description="From address.")
    email_password: SecretStr | None = Field(
        default=None, description="SMTP password (in Azure: a Key Vault reference)."
    )
    email_smtp_host: str | None = Field(default=None, description="SMTP server host name.")
    email_smtp_port: int = Field(default=587, ge=1, le=65535, description="SMTP server port.")
    email_smtp_username: str | None = Field(default=None, description="SMTP user name; defaults to EMAIL_SENDER.")
    email_smtp_security: Literal["starttls", "ssl", "none"] = Field(
        default="starttls", description="starttls, ssl (implicit TLS, usually port 465) or none (local sinks only)."
    )
    acs_connection_string: SecretStr | None = Field(
        default=None, description="ACS connection string (in Azure: a Key Vault reference); or set ACS_ENDPOINT."
    )
    acs_endpoint: str | None = Field(
        default=None, description="https://<resource>.communication.azure.com, used with the app's identity."
    )
    email_default_recipients: CommaList = Field(
        default_factory=list,
        validation_alias=AliasChoices("EMAIL_FALLBACK_RECIPIENTS", "EMAIL_DEFAULT_RECIPIENTS"),
        description="Comma-separated addresses that get a job's notifications when the job names nobody (no "
        "on_failure addresses, no ai_agent_notify tag). EMAIL_DEFAULT_RECIPIENTS is accepted as an alias; "
        "EMAIL_ALWAYS_COPY is the list that gets every notification.",
    )
    email_escalation_recipients: CommaList = Field(
        default_factory=list, description="Comma-separated addresses that get escalations."
    )
    # --- Email: always copied (issue 14) ------------------------------------------------------------
    email_always_copy: CommaList = Field(
        default_factory=list,
        description="Comma-separated addresses added to every notification, whoever else gets it (an on-call "
        "list or an audit mailbox).",
    )
    _split_always_copy = field_validator("email_always_copy", mode="before")(split_commas)
    _always_copy_addresses = field_validator("email_always_copy")(email_addresses)
    email_file_dir: str | None = Field(default=None, description="EMAIL_TRANSPORT=file: where .eml/.html files go.")
    feedback_url: str | None = Field(default=None, description="Link in emails where a reader rates the decision.")
    email_sender_name: str = Field(default="Databricks AI agent", description="Display name in the From header (SMTP).")
    email_password_secret_name: str | None = Field(
        default=None, description="Key Vault secret holding the SMTP password, when EMAIL_PASSWORD is not set."
    )
    acs_connection_string_secret_name: str | None = Field(
        default=None,
        description="Key Vault secret holding the ACS connection string, when ACS_CONNECTION_STRING is not set.",
    )
    email_smtp_timeout_seconds: float = Field(default=30.0, gt=0, le=300, description="Timeout of each SMTP step.")
    acs_send_timeout_seconds: float = Field(
        default=30.0, gt=0, le=300, description="How long to wait for ACS to confirm a send before leaving it running."
    )
    acs_poll_interval_seconds: float = Field(default=2.0, ge=0, le=60, description="Between ACS send-status checks.")
    email_recipients_tag: str = Field(
        default="ai_agent_notify",
        description="Job tag naming recipients (comma-separated), used when the job has no on_failure emails.",
    )
    email_max_per_recipient_per_hour: int = Field(
        default=10, ge=0, le=10_000,
        description="Emails per recipient per clock hour; the rest go in one digest after the hour. 0: no cap.",
    )
    email_repeat_window_minutes: int = Field(
        default=60, ge=0, le=7 * 24 * 60,
        description="The same failure (fingerprint) of the same job within this window goes in the digest. 0: off.",
    )
    email_max_send_attempts: int = Field(
        default=8, ge=1, le=50, description="Sends tried (backoff up to an hour apart) before an email is marked failed."
    )

    # --- Feedback and learning ----------------------------------------------------------------------
    feedback_signing_key: SecretStr | None = Field(
        default=None,
        description="Key that signs the emails' feedback links (HMAC-SHA256; in Azure: a Key Vault reference). "
        "Unset: read from the secret named by FEEDBACK_SIGNING_KEY_SECRET_NAME. Rotating it voids every link sent.",
    )
    feedback_signing_key_secret_name: str = Field(
        default="feedback-signing-key", pattern=r"^[0-9A-Za-z-]{1,127}$",
        description="Key Vault secret holding the feedback signing key, when FEEDBACK_SIGNING_KEY is not set "
        "(without KEY_VAULT_URL: the environment variable FEEDBACK_SIGNING_KEY). Neither: no feedback links.",
    )
    feedback_link_days: int = Field(
        default=14, ge=1, le=90, description="How long an email's feedback link works, in days."
    )
    feedback_trust_principal_header: bool = Field(
        default=False,
        description="true only with App Service Authentication on for the app: the feedback API then counts the "
        "signed-in principal it passes (X-MS-CLIENT-PRINCIPAL-NAME) as the person answering. false: the typed "
        "'by' is only a label, and every function-key answer counts as one confirmation.",
    )
    website_hostname: str | None = Field(
        default=None, validation_alias=AliasChoices("WEBSITE_HOSTNAME"),
        description="Set by Azure (and by func start): the app's host name. With FEEDBACK_URL unset, the links "
        "go to https://<WEBSITE_HOSTNAME>/api/feedback/{key}.",
    )
    feedback_table: str = Field(
        default="agentfeedback", pattern=r"^[A-Za-z][A-Za-z0-9]{2,62}$",
        description="Table of people's feedback on decisions (one row per decision and person).",
    )
    learned_rules_table: str = Field(
        default="agentlearnedrules", pattern=r"^[A-Za-z][A-Za-z0-9]{2,62}$",
        description="Table of rules learned from corrections (one row per fingerprint).",
    )

    # --- Escalation channels (Teams, Slack, PagerDuty) ----------------------------------------------
    teams_webhook_secret_name: str | None = Field(
        default=None, description="Key Vault secret holding the Teams Workflows webhook URL. Unset: no Teams.",
    )
    slack_webhook_secret_name: str | None = Field(
        default=None, description="Key Vault secret holding the Slack incoming-webhook URL. Unset: no Slack.",
    )
    pagerduty_routing_key_secret_name: str | None = Field(
        default=None, description="Key Vault secret holding the PagerDuty Events API v2 routing (integration) key. "
        "Unset: no PagerDuty.",
    )
    pagerduty_events_url: str = Field(
        default="https://events.pagerduty.com/v2/enqueue", description="PagerDuty Events API v2 endpoint.",
    )
    notify_channel_routes: str = Field(
        default="escalation=pagerduty,teams,slack;resolved=pagerduty",
        description="Which notifications go to which configured channels: <kind>=<channel>[,...];... with kinds "
        "diagnosis, escalation, retry, observe, outcome, incident, resolved. A job's ai_agent_channels tag picks "
        "among them ('none': no channel).",
    )

    # --- incidents ----------------------------------------------------------------------------------
    incidents_enabled: bool = Field(
        default=True, description="Group failures of different jobs with one cause into incidents (one notification, "
        "reruns held during an outage). false: every failure is decided and emailed on its own.",
    )
    incident_window_seconds: int = Field(
        default=900, ge=1, le=86_400,
        description="Failures of different jobs sharing a cause within this many seconds of the incident's last "
        "member join one incident.",
    )
    incident_min_jobs: int = Field(
        default=2, ge=2, le=1000,
        description="The incident opens (its notification goes out, members' emails are folded into it, reruns "
        "are held) when this many distinct jobs share the cause.",
    )
    incident_update_seconds: int = Field(
        default=900, ge=1, le=86_400,
        description="At most one 'update' notification per recipient list per this many seconds while members join.",
    )
    incident_canary_backoff_seconds: int = Field(
        default=60, ge=1, le=86_400,
        description="First wait before a held incident's canary rerun; doubles after each failed canary, +-20 % "
        "jitter.",
    )
    incident_canary_max_backoff_seconds: int = Field(
        default=600, ge=1, le=86_400, description="The longest wait between two canary reruns.",
    )
    incident_release_spread_seconds: int = Field(
        default=120, ge=0, le=86_400,
        description="Once the canary's rerun succeeds, the held reruns go out spread over this many seconds.",
    )
    incident_escalate_after_seconds: int = Field(
        default=3600, ge=1, le=7 * 86_400,
        description="A held incident (outage) older than this escalates once (one notification, PagerDuty trigger).",
    )
    incident_first_email_wait_seconds: int = Field(
        default=60, ge=0, le=3600,
        description="The first failure of a transient cause outside the job (infrastructure, throttling, network) "
        "keeps its own email this long (sent by the timer after it) so that, should other jobs fail with the same "
        "cause, it is folded into the incident's. 0: sent at once.",
    )
    incidents_table: str = Field(
        default="incidents", pattern=r"^[A-Za-z][A-Za-z0-9]{2,62}$",
        description="Table of incidents, their members and the cause pointers that group failures.",
    )

    # --- Logging ------------------------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="INFO", description="DEBUG, INFO, WARNING, ERROR or CRITICAL."
    )

    # --- Telemetry ----------------------------------------------------------------------------------
    applicationinsights_connection_string: str | None = Field(
        default=None,
        description="Application Insights connection string. Set: logs keep their dimensions (run, job, workspace, "
        "category, action) and the agent's metrics are sent through OpenTelemetry. Unset: telemetry is off.",
    )
    applicationinsights_authentication_string: str | None = Field(
        default=None,
        description="'Authorization=AAD;ClientId=<managed identity client id>' when the Application Insights "
        "resource refuses local (key) auth, as the deployed one does.",
    )

    # --- Validation of single values (shared/settings/values.py) ------------------------------------
    # Every check below is per field, so pydantic reports all of them together. Cross-field checks are in
    # problems_for(), which load_settings() runs after these.
    _split = field_validator(
        "resize_allowed_spark_conf", "email_default_recipients", "email_escalation_recipients", mode="before"
    )(split_commas)
    _upper = field_validator("log_level", mode="before")(upper_case)
    _databricks_auth = field_validator("databricks_auth", mode="before")(databricks_auth_type)
    _host = field_validator("databricks_workspace_url", mode="before")(databricks_host)
    _url = field_validator("databricks_workspace_url", "azure_openai_endpoint", "feedback_url",
                           "storage_queue_service_uri", "storage_table_service_uri", "pagerduty_events_url")(http_url)
    _https_url = field_validator("key_vault_url", "acs_endpoint")(https_url)
    _numeric_workspace_id = field_validator("databricks_workspace_id", mode="before")(workspace_id)
    _workspaces_json = field_validator("databricks_workspaces")(workspaces_json)
    _ncrontab = field_validator("poll_schedule")(ncrontab)

    @field_validator("notify_channel_routes")
    @classmethod
    def _channel_routes(cls, value: str) -> str:
        from shared.notify.channels.route import parse_routes

        parse_routes(value)  # ValueError names the bad part
        return value
    _ladders = field_validator("resize_node_ladders")(node_type_ladders)
    _addresses = field_validator("email_default_recipients", "email_escalation_recipients")(email_addresses)
    # Defined last so it runs before the other "before" validators (pydantic runs them last-defined first).
    _no_unresolved_key_vault_reference = field_validator("*", mode="before")(no_key_vault_reference)

    @model_validator(mode="after")
    def _identity_storage_uris(self) -> Settings:
        # AzureWebJobsStorage__accountName alone stands for the public-cloud endpoints (as in the Functions host).
        if self.storage_account_name:
            self.storage_queue_service_uri = (
                self.storage_queue_service_uri or f"https://{self.storage_account_name}.queue.core.windows.net"
            )
            self.storage_table_service_uri = (
                self.storage_table_service_uri or f"https://{self.storage_account_name}.table.core.windows.net"
            )
        return self

    # --- Derived views ------------------------------------------------------------------------------
    @property
    def node_ladders(self) -> list[list[str]]:
        """The resize ladders, smallest node type first."""
        return ladders(self.resize_node_ladders)

    def workspaces(self) -> list[WorkspaceConfig]:
        """Every configured workspace: DATABRICKS_WORKSPACES entries, else the single DATABRICKS_* one."""
        return configured_workspaces(self)

    # --- Cross-field checks -------------------------------------------------------------------------
    def problems_for(self, feature: str) -> list[SettingProblem]:
        """What `feature` (one of FEATURES) needs and does not have, each named by its environment name."""
        return feature_problems(self, feature)

    def problems(self, features: Collection[str] = FEATURES) -> list[SettingProblem]:
        """problems_for() of each feature."""
        return [problem for feature in features for problem in self.problems_for(feature)]

    # --- Secrets held in settings -------------------------------------------------------------------
    def secret_values(self) -> list[str]:
        """Every secret value held directly in the settings (to register with the log redaction)."""
        values = [
            getattr(self, name).get_secret_value()
            for name in type(self).model_fields
            if isinstance(getattr(self, name), SecretStr)
        ]
        values += [w.client_secret.get_secret_value() for w in self.workspaces() if w.client_secret is not None]
        values += [w.pat_token.get_secret_value() for w in self.workspaces() if w.pat_token is not None]
        values += [w.webhook_password.get_secret_value() for w in self.workspaces() if w.webhook_password is not None]
        return [v for v in values if v and v.lower() != "usedevelopmentstorage=true"]


def env_name(field_name: str) -> str:
    """The environment (app setting) name of a field: its first alias, else its name in upper case."""
    field = Settings.model_fields[field_name]
    if isinstance(field.validation_alias, AliasChoices):
        return str(field.validation_alias.choices[0])
    return field_name.upper()


def is_secret(field_name: str) -> bool:
    """Whether a field holds a secret (never shown, never given a plain value in Azure)."""
    return "SecretStr" in str(Settings.model_fields[field_name].annotation)
