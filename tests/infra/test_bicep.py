"""infra/ read as a specification: the resources, app settings and role assignments issue 8 asks for.

The Bicep CLI cannot be installed here, so the templates are parsed with pycep-parser, the parser checkov uses.
pycep lives only in checkov's own venv (.venv-checkov; its pins clash with the app's), so these tests run in
the app's venv and ask `.venv-checkov/bin/python scripts/check_infra.py parse ...` for the parsed JSON.
Without that venv they skip, unless INFRA_TESTS_REQUIRE_CHECKOV=1 (set by `make check-infra`), when they fail.

pycep keeps expressions as trees of strings: identifiers and string literals both come out as plain strings,
and `(a == 'x') ? [...] : []` as an operator tree. The helpers below read just enough of that.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from pydantic import AliasChoices

from shared.settings import Settings

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
CHECK_SCRIPT = REPO / "scripts" / "check_infra.py"
CHECKOV_VENV = REPO / os.environ.get("CHECKOV_VENV", ".venv-checkov")  # relative: to the repo root
REQUIRE_CHECKOV = os.environ.get("INFRA_TESTS_REQUIRE_CHECKOV") == "1"

MODULES = ("identity", "network", "storage", "keyvault", "monitoring", "communication", "openai", "rbac",
           "functionapp")

# Built-in role definition ids (reference/azure.md; the ACS one from Azure's built-in role list).
ROLE_IDS = {
    "storageBlobDataOwner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "storageQueueDataContributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "storageTableDataContributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "keyVaultSecretsUser": "4633458b-17de-408a-b874-0445c86b69e6",
    "keyVaultSecretsOfficer": "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
    "monitoringMetricsPublisher": "3913510d-42f4-4e42-8a64-420c390055eb",
    "communicationAndEmailServiceOwner": "09976791-48a7-449e-bb21-39d1a415f350",
    "cognitiveServicesOpenAiUser": "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd",
}
BROAD_ROLE_IDS = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
    "17d1049b-9a84-46fb-8f53-869881c3d3ab": "Storage Account Contributor",
    "00482a5a-887f-4fb3-b363-3b7fe8e74483": "Key Vault Administrator",
}

# Settings the Functions host reads (not shared/settings.py fields).
HOST_SETTINGS = {
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "AzureWebJobsStorage__blobServiceUri",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
}
# Rejected or ignored on Flex Consumption: the runtime lives in functionAppConfig.
FLEX_DEPRECATED = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTSHARE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD",
}
# App setting -> Key Vault secret name (docs/deploy.md lists the same).
SECRET_REFERENCES = {
    "DATABRICKS_PAT_TOKEN": "databricks-pat",
    "DATABRICKS_CLIENT_SECRET": "databricks-client-secret",
    "WEBHOOK_PASSWORD": "webhook-password",
    "EMAIL_PASSWORD": "email-password",
    "ACS_CONNECTION_STRING": "acs-connection-string",
    "AZURE_OPENAI_API_KEY": "azure-openai-api-key",
}
FEEDBACK_SECRET = "feedback-signing-key"  # read by the app through KEY_VAULT_URL, not a reference
KV_REFERENCE = re.compile(r"^@Microsoft\.KeyVault\(VaultName=\$\{keyVaultName\};SecretName=(?P<secret>[a-z0-9-]+)\)$")


# --- Parsing ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def parsed() -> dict[str, dict]:
    """Every infra/**/*.bicep (and azure.yaml) parsed by pycep in checkov's venv, keyed by repo-relative path."""
    python = CHECKOV_VENV / "bin" / "python"
    if not python.is_file():
        message = (
            f"checkov's venv ({CHECKOV_VENV}) is absent; `make check-infra` creates it and runs these tests"
        )
        if REQUIRE_CHECKOV:
            pytest.fail(message)
        pytest.skip(message)
    files = sorted(INFRA.rglob("*.bicep")) + [REPO / "azure.yaml"]
    proc = subprocess.run(
        [str(python), str(CHECK_SCRIPT), "parse", *map(str, files)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, f"pycep could not parse the templates (checkov would read nothing):\n{proc.stderr}"
    return {Path(name).relative_to(REPO).as_posix(): tree for name, tree in json.loads(proc.stdout).items()}


@pytest.fixture(scope="module")
def main(parsed):
    return parsed["infra/main.bicep"]


@pytest.fixture(scope="module")
def mod(parsed):
    return lambda name: parsed[f"infra/modules/{name}.bicep"]


class Resource(typing.NamedTuple):
    type: str
    api_version: str
    existing: bool
    condition: object  # None when unconditional
    body: dict


def resource(tree: dict, symbol: str) -> Resource:
    raw = tree["resources"][symbol]
    config, condition = raw["config"], None
    if "loop_type" in config:
        config, condition = config["config"], config["condition"]
    elif "condition" in config and "config" in config and "name" not in config:
        config, condition = config["config"], config["condition"]
    return Resource(raw["type"], raw["api_version"], raw["existing"], condition, config)


def resources_of_type(tree: dict, type_: str) -> dict[str, Resource]:
    return {s: resource(tree, s) for s, r in tree["resources"].items() if r["type"] == type_}


def one_of_type(tree: dict, type_: str) -> Resource:
    found = resources_of_type(tree, type_)
    assert len(found) == 1, f"expected one {type_}, found {sorted(found)}"
    return next(iter(found.values()))


def module_body(tree: dict, symbol: str) -> tuple[object, dict]:
    config = tree["modules"][symbol]["config"]
    if "condition" in config and "config" in config and "name" not in config:
        return config["condition"], config["config"]
    return None, config


def strings(node: object) -> set[str]:
    """Every identifier and literal in an expression tree (not pycep's own operator and function names)."""
    if isinstance(node, str):
        return {node}
    if isinstance(node, dict):
        if set(node) == {"operator"}:
            return strings(node["operator"]["operands"])
        if set(node) == {"function"}:
            return {node["function"]["type"]} | strings(node["function"].get("parameters"))
        return set().union(*(strings(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(strings(v) for v in node)) if node else set()
    return set()


def decorator(param: dict, kind: str):
    for item in param["decorators"]:
        if item["type"] == kind:
            return item.get("argument", True)
    return None


def app_setting_groups(tree: dict) -> dict[str, tuple[object, list[dict]]]:
    """{variable: (condition or None, [{name, value}, ...])} for each variable that is a list of settings."""
    groups = {}
    for name, var in tree["variables"].items():
        value, condition = var["value"], None
        if isinstance(value, dict) and value.get("operator", {}).get("type") == "conditional":
            operands = value["operator"]["operands"]
            branches = [b for b in (operands["true_value"], operands["false_value"]) if b]
            if len(branches) != 1:
                continue
            condition, value = operands["condition"], branches[0]
        is_settings = all(isinstance(i, dict) and set(i) == {"name", "value"} for i in value or [None])
        if isinstance(value, list) and value and is_settings:
            groups[name] = (condition, value)
    return groups


def concat_members(tree: dict, var: str) -> list[str]:
    """The variables a concat() chain joins, nested chains flattened."""
    value = tree["variables"][var]["value"]
    if isinstance(value, dict) and value.get("function", {}).get("type") == "concat":
        out = []
        for arg in value["function"]["parameters"].values():
            out += concat_members(tree, arg) if arg in tree["variables"] else [arg]
        return out
    return [var]


@pytest.fixture(scope="module")
def app_settings(mod) -> dict[str, tuple[object, object]]:
    """Every app setting the function app module sets: {name: (condition or None, value)}."""
    tree = mod("functionapp")
    out: dict[str, tuple[object, object]] = {}
    for condition, items in app_setting_groups(tree).values():
        for item in items:
            out.setdefault(item["name"], (condition, item["value"]))
    return out


# --- Settings contract (shared/settings.py) ----------------------------------------------------------------
def env_names(field_name: str) -> set[str]:
    field = Settings.model_fields[field_name]
    names = {field_name.upper()}
    if isinstance(field.validation_alias, AliasChoices):
        names |= {str(choice) for choice in field.validation_alias.choices}
    return names


ALL_ENV_NAMES = {n.lower() for f in Settings.model_fields for n in env_names(f)}
SECRET_FIELDS = [f for f, info in Settings.model_fields.items() if "SecretStr" in str(info.annotation)]


def literal_values(field_name: str) -> set[str]:
    def walk(tp) -> set[str]:
        if typing.get_origin(tp) is typing.Literal:
            return set(typing.get_args(tp))
        return set().union(*(walk(arg) for arg in typing.get_args(tp))) if typing.get_args(tp) else set()

    return walk(Settings.model_fields[field_name].annotation)


def bound(field_name: str, attr: str):
    return next(getattr(m, attr) for m in Settings.model_fields[field_name].metadata if hasattr(m, attr))


# === Templates parse ======================================================================================
def test_every_template_parses_with_checkovs_parser(parsed):
    assert "infra/main.bicep" in parsed
    assert {f"infra/modules/{m}.bicep" for m in MODULES} <= set(parsed)


def test_main_deploys_at_subscription_scope_into_one_resource_group(main):
    assert main["globals"]["scope"]["value"] == "subscription"
    rg = one_of_type(main, "Microsoft.Resources/resourceGroups")
    assert rg.condition is None
    for symbol, module in main["modules"].items():
        assert module["type"] == "local", f"{symbol}: registry modules are opaque to checkov; declare resources"
        assert (INFRA / module["detail"]["path"]).is_file(), f"{symbol}: {module['detail']['path']} is missing"
        assert module_body(main, symbol)[1]["scope"] == "rg"


def test_main_uses_every_module(main):
    used = {Path(m["detail"]["path"]).stem for m in main["modules"].values()}
    assert used == set(MODULES)


# What the Bicep compiler would check and cannot here: module parameters and outputs line up.
def test_modules_get_exactly_the_parameters_they_declare(main, parsed):
    for symbol, module in main["modules"].items():
        declared = parsed[f"infra/{module['detail']['path']}"]["parameters"]
        passed = set(module_body(main, symbol)[1]["params"])
        assert passed <= set(declared), f"{symbol}: unknown parameters {passed - set(declared)}"
        required = {name for name, p in declared.items() if p["default"] is None}
        assert required <= passed, f"{symbol}: required parameters not passed {required - passed}"


def output_references(node: object, modules: set[str]) -> set[tuple[str, str]]:
    """(module, output) for every `<module>.outputs.<name>`, in accessor trees and in '${...}' strings."""
    found: set[tuple[str, str]] = set()
    if isinstance(node, str):
        found |= {(m, o) for m, o in re.findall(r"\$\{(\w+)\.outputs\.(\w+)\}", node) if m in modules}
    elif isinstance(node, dict):
        operator = node.get("operator")
        if isinstance(operator, dict) and operator.get("type") == "property_accessor":
            first, rest = operator["operands"]["operand_1"], operator["operands"]["operand_2"]
            inner = rest.get("operator", {}) if isinstance(rest, dict) else {}
            is_outputs = inner.get("type") == "property_accessor" and inner["operands"]["operand_1"] == "outputs"
            if first in modules and is_outputs:
                found.add((first, inner["operands"]["operand_2"]))
        for value in node.values():
            found |= output_references(value, modules)
    elif isinstance(node, list):
        for value in node:
            found |= output_references(value, modules)
    return found


def test_every_module_output_main_reads_is_declared(main, parsed):
    modules = set(main["modules"])
    references = output_references(main, modules)
    assert references, "the walker found no module outputs at all"
    for symbol, output in references:
        declared = parsed[f"infra/{main['modules'][symbol]['detail']['path']}"]["outputs"]
        assert output in declared, f"{symbol}.outputs.{output} is not an output of the module"


# === Function App on Flex Consumption =======================================================================
def test_plan_is_flex_consumption_on_linux(mod):
    plan = one_of_type(mod("functionapp"), "Microsoft.Web/serverfarms")
    assert plan.body["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan.body["properties"]["reserved"] is True


def test_function_app_runs_python_311_from_function_app_config(mod):
    app = one_of_type(mod("functionapp"), "Microsoft.Web/sites")
    assert app.api_version >= "2023-12-01", "functionAppConfig needs Microsoft.Web/sites@2023-12-01 or later"
    assert app.body["kind"] == "functionapp,linux"
    config = app.body["properties"]["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    assert config["deployment"]["storage"]["type"] == "blobContainer"
    assert config["deployment"]["storage"]["value"] == "${storageBlobEndpoint}${deploymentContainerName}"


def test_function_app_runs_as_the_user_assigned_identity_everywhere(mod):
    app = one_of_type(mod("functionapp"), "Microsoft.Web/sites")
    props = app.body["properties"]
    assert app.body["identity"] == {"type": "UserAssigned", "userAssignedIdentities": {"'${identityId}'": {}}}
    assert props["keyVaultReferenceIdentity"] == "identityId"
    auth = props["functionAppConfig"]["deployment"]["storage"]["authentication"]
    assert auth == {"type": "UserAssignedIdentity", "userAssignedIdentityResourceId": "identityId"}


def test_function_app_is_https_only_tls_12_and_ftp_off(mod):
    tree = mod("functionapp")
    props = one_of_type(tree, "Microsoft.Web/sites").body["properties"]
    assert props["httpsOnly"] is True
    assert props["siteConfig"]["minTlsVersion"] == "1.2"
    assert props["siteConfig"]["scmMinTlsVersion"] == "1.2"
    assert props["siteConfig"]["ftpsState"] == "Disabled"
    policies = resources_of_type(tree, "Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    assert {p.body["name"]: p.body["properties"]["allow"] for p in policies.values()} == {"ftp": False, "scm": False}


def test_function_app_carries_the_azd_service_tag_of_azure_yaml(mod, parsed):
    app = one_of_type(mod("functionapp"), "Microsoft.Web/sites")
    tags = app.body["tags"]["function"]
    assert tags["type"] == "union"
    services = parsed["azure.yaml"]["services"]
    assert list(services) == [tags["parameters"]["arg_2"]["'azd-service-name'"]]
    service = next(iter(services.values()))
    assert service == {"project": ".", "language": "python", "host": "function"}


def test_app_settings_are_set_inline_from_every_settings_group(mod):
    tree = mod("functionapp")
    props = one_of_type(tree, "Microsoft.Web/sites").body["properties"]
    assert props["siteConfig"]["appSettings"] == "appSettings"
    joined = concat_members(tree, "appSettings")
    assert set(app_setting_groups(tree)) <= set(joined), "a settings group is declared but never applied"
    assert joined[-1] == "extraAppSettings"
    assert not resources_of_type(tree, "Microsoft.Web/sites/config"), "settings live in siteConfig.appSettings"


# === App settings ==========================================================================================
def test_every_app_setting_is_read_by_the_app_or_the_functions_host(app_settings):
    unknown = {n for n in app_settings if n.lower() not in ALL_ENV_NAMES and n not in HOST_SETTINGS}
    assert not unknown, f"set but read by nothing (names must match shared/settings.py): {sorted(unknown)}"


def test_no_flex_deprecated_or_connection_string_storage_setting(app_settings):
    assert not FLEX_DEPRECATED & set(app_settings)
    assert "AzureWebJobsStorage" not in app_settings, "storage is identity-based: no connection string"
    assert "AzureWebJobsStorage__accountName" not in app_settings, "service URIs are given instead"


def test_host_storage_uses_the_managed_identity_for_blob_queue_and_table(app_settings):
    expected = {
        "AzureWebJobsStorage__credential": "managedidentity",
        "AzureWebJobsStorage__clientId": "identityClientId",
        "AzureWebJobsStorage__blobServiceUri": "storageBlobEndpoint",
        "AzureWebJobsStorage__queueServiceUri": "storageQueueEndpoint",
        "AzureWebJobsStorage__tableServiceUri": "storageTableEndpoint",
    }
    assert {name: app_settings[name] for name in expected} == {n: (None, v) for n, v in expected.items()}
    # The app reads the queue and table URIs through these same names (aliases in shared/settings.py).
    assert "AzureWebJobsStorage__queueServiceUri" in env_names("storage_queue_service_uri")
    assert "AzureWebJobsStorage__tableServiceUri" in env_names("storage_table_service_uri")


def test_app_insights_telemetry_uses_entra_auth(app_settings):
    assert app_settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == (
        None, "ClientId=${identityClientId};Authorization=AAD"
    )
    assert app_settings["APPLICATIONINSIGHTS_CONNECTION_STRING"] == (None, "appInsightsConnectionString")


def test_settings_every_deployment_needs_are_always_set(app_settings):
    always = {
        "AZURE_CLIENT_ID": "identityClientId",
        "KEY_VAULT_URL": "keyVaultUri",
        "DATABRICKS_WORKSPACE_URL": "databricksWorkspaceUrl",
        "DATABRICKS_AUTH": "databricksAuth",
        "AGENT_MODE": "agentMode",
        "POLL_SCHEDULE": "pollSchedule",
        "DECISIONS_TABLE": "decisionsTable",
        "STATE_TABLE": "stateTable",
        "OUTBOX_TABLE": "outboxTable",
        "EMAIL_TRANSPORT": "emailTransport",
    }
    for name, value in always.items():
        assert app_settings[name] == (None, value), name
    assert app_settings["MAX_RETRIES"][0] is None
    assert app_settings["EMAIL_ENABLED"][0] is None


def test_secrets_are_key_vault_references_set_only_when_their_mode_needs_them(app_settings):
    for name, secret in SECRET_REFERENCES.items():
        condition, value = app_settings[name]
        match = KV_REFERENCE.match(value)
        assert match and match["secret"] == secret, f"{name}: {value!r}"
        if name == "WEBHOOK_PASSWORD":
            assert condition is None, "Basic auth is required in every mode (issue 11): the reference is always set"
            continue
        assert condition is not None, f"{name} must be conditional: an unneeded reference to a missing secret fails"
    assert {"databricksAuth", "pat"} <= strings(app_settings["DATABRICKS_PAT_TOKEN"][0])
    assert {"databricksAuth", "oauth-m2m"} <= strings(app_settings["DATABRICKS_CLIENT_SECRET"][0])
    assert app_settings["DATABRICKS_CLIENT_ID"] == (app_settings["DATABRICKS_CLIENT_SECRET"][0], "databricksClientId")
    assert app_settings["WEBHOOK_USERNAME"] == (None, "webhookUsername")
    assert {"emailTransport", "smtp"} <= strings(app_settings["EMAIL_PASSWORD"][0])
    assert {"acsAuth", "connectionString"} <= strings(app_settings["ACS_CONNECTION_STRING"][0])
    assert {"openAiUseKey"} <= strings(app_settings["AZURE_OPENAI_API_KEY"][0])


def test_secret_names_are_the_ones_the_app_reads_from_key_vault_itself():
    # The app can also fetch a secret through KEY_VAULT_URL, by the name a *_SECRET_NAME setting gives.
    checked = 0
    for field_name, field in Settings.model_fields.items():
        if "secret_name" not in field_name or not isinstance(field.default, str):
            continue
        stem = field_name.replace("secret_name_", "").replace("_secret_name", "")
        setting = next((s for s in SECRET_REFERENCES if s.lower().startswith(stem)), None)
        if setting is not None:
            assert field.default == SECRET_REFERENCES[setting], f"{field_name} vs the {setting} reference"
            checked += 1
    assert checked, "no *_SECRET_NAME setting with a default found in shared/settings.py"


def test_no_secret_field_of_the_settings_is_ever_given_a_plain_value(app_settings):
    secret_names = {n.lower() for f in SECRET_FIELDS for n in env_names(f)}
    assert "databricks_pat_token" in secret_names  # the contract this test relies on
    for name, (_, value) in app_settings.items():
        if name.lower() in secret_names:
            assert isinstance(value, str) and KV_REFERENCE.match(value), f"{name} must be a Key Vault reference"


def test_acs_uses_the_identity_by_default_with_the_managed_domain_sender(main, app_settings):
    assert main["parameters"]["acsAuth"]["default"] == "entra"
    condition, value = app_settings["ACS_ENDPOINT"]
    assert value == "acsEndpoint"
    assert {"emailTransport", "acs", "acsAuth", "entra"} <= strings(condition)
    _, functionapp = module_body(main, "functionApp")
    assert functionapp["params"]["acsSender"] == {
        "operator": {"type": "property_accessor", "operands": {"operand_1": "communication",
                     "operand_2": {"operator": {"type": "property_accessor",
                                                "operands": {"operand_1": "outputs", "operand_2": "sender"}}}}}
    }


def test_optional_values_are_left_out_when_empty_rather_than_set_to_empty(app_settings):
    for name, param in (("DATABRICKS_WORKSPACE_ID", "databricksWorkspaceId"), ("FEEDBACK_URL", "feedbackUrl")):
        condition, value = app_settings[name]
        assert value == param
        assert strings(condition) == {"empty", param}


def test_openai_settings_only_when_an_endpoint_exists(app_settings, main):
    for name in ("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_DEPLOYMENT", "AZURE_OPENAI_MODEL", "AZURE_OPENAI_API_VERSION"):
        assert app_settings[name][0] == "useOpenAi", name
    assert strings(main["variables"]["useOpenAi"]["value"]) >= {"deployOpenAi", "openAiEndpoint"}


# === Webhook credentials are required (issue 11 point 8) ======================================================
def test_webhook_credentials_are_required_in_every_mode(main, mod):
    # Required parameters with a minimum length: ARM refuses a deployment without them, so act mode (like
    # observe) never runs with the function key as the only credential.
    password = main["parameters"]["webhookPassword"]
    assert decorator(password, "secure")
    assert password["default"] is None, "no default: a deployment must pass a password"
    assert decorator(password, "min_length") >= 15
    username = main["parameters"]["webhookUsername"]
    assert decorator(username, "min_length") >= 1 and username["default"], "no empty default username"
    for module, name in (("keyvault", "webhookPassword"), ("functionapp", "webhookUsername")):
        param = mod(module)["parameters"][name]
        assert param["default"] is None, f"{module}.{name} must be required too"
        assert decorator(param, "min_length"), f"{module}.{name}"
    _, functionapp = module_body(main, "functionApp")
    assert functionapp["params"]["webhookUsername"] == "webhookUsername"
    _, keyvault = module_body(main, "keyVault")
    assert keyvault["params"]["webhookPassword"] == "webhookPassword"


# === Parameters match the settings' own bounds ===============================================================
def test_agent_mode_defaults_to_observe_and_allows_only_the_apps_modes(main):
    param = main["parameters"]["agentMode"]
    assert param["default"] == "observe"
    assert set(decorator(param, "allowed")) == literal_values("agent_mode")


@pytest.mark.parametrize(
    ("param", "field"),
    [("databricksAuth", "databricks_auth"), ("emailTransport", "email_transport"), ("logLevel", "log_level")],
)
def test_allowed_values_are_ones_the_app_accepts(main, param, field):
    assert set(decorator(main["parameters"][param], "allowed")) <= literal_values(field)


def test_max_retries_bounds_match_the_settings(main):
    param = main["parameters"]["maxRetries"]
    assert (decorator(param, "min_value"), decorator(param, "max_value")) == (bound("max_retries", "ge"),
                                                                                bound("max_retries", "le"))


def test_databricks_auth_defaults_to_entra_via_the_identity(main):
    assert main["parameters"]["databricksAuth"]["default"] == "entra"


# === What function_app.py binds to =========================================================================
FUNCTION_APP = REPO / "function_app.py"


@pytest.fixture(scope="module")
def function_app_source() -> str:
    if not FUNCTION_APP.is_file():
        pytest.skip("function_app.py not written yet")
    return FUNCTION_APP.read_text()


def test_binding_expressions_in_function_app_are_always_set(function_app_source, app_settings):
    # A %NAME% the host cannot resolve stops the function from being indexed at all.
    for name in set(re.findall(r"%(\w+)%", function_app_source)):
        assert name in app_settings, f"%{name}% is bound in function_app.py but not an app setting"
        assert app_settings[name][0] is None, f"{name} must be set in every mode"


def test_the_queues_function_app_uses_are_the_ones_deployed(function_app_source, main):
    # The bindings as the Functions host indexes them (a fresh app object: get_functions() works once per app).
    import importlib

    import function_app

    app = importlib.reload(function_app).app
    used = {b["queueName"] for f in app.get_functions() for b in json.loads(f.get_function_json())["bindings"]
            if "queueName" in b}
    queue = main["variables"]["jobQueueName"]["value"]
    assert used and used <= {queue, f"{queue}-poison"}, used


def test_webhook_url_output_is_the_route_function_app_serves(function_app_source, main):
    # Other routes (feedback, report) may exist; the output must name the webhook's.
    routes = re.findall(r'@app\.route\(\s*route="([^"]+)"', function_app_source)
    host = json.loads((REPO / "host.json").read_text())
    prefix = host.get("extensions", {}).get("http", {}).get("routePrefix", "api")
    url = main["outputs"]["WEBHOOK_URL"]["value"]
    assert url.split("}", 1)[1] in [f"/{prefix}/{route}" for route in routes]
    assert url.endswith("/webhook")
    assert "AuthLevel.FUNCTION" in function_app_source, "the docs tell Databricks to send ?code=<function key>"


# === Storage ===============================================================================================
def test_storage_has_shared_key_access_off_and_no_public_blob_access(mod):
    props = one_of_type(mod("storage"), "Microsoft.Storage/storageAccounts").body["properties"]
    assert props["allowSharedKeyAccess"] is False
    assert props["allowBlobPublicAccess"] is False
    assert props["minimumTlsVersion"] == "TLS1_2"
    assert props["supportsHttpsTrafficOnly"] is True
    container = one_of_type(mod("storage"), "Microsoft.Storage/storageAccounts/blobServices/containers")
    assert container.body["properties"]["publicAccess"] == "None"


def test_storage_declares_the_job_queue_its_poison_queue_and_the_apps_tables(main, mod):
    assert main["variables"]["jobQueueName"]["value"] == "job-failures"
    queues = resources_of_type(mod("storage"), "Microsoft.Storage/storageAccounts/queueServices/queues")
    assert sorted(q.body["name"] for q in queues.values()) == ["${queueName}-poison", "queueName"]
    tables = main["variables"]["tableNames"]["value"]
    defaults = {k: Settings.model_fields[f"{k}_table"].default for k in ("decisions", "state", "outbox")}
    assert tables == defaults
    table = one_of_type(mod("storage"), "Microsoft.Storage/storageAccounts/tableServices/tables")
    assert table.body["name"] == "tableName"  # one per entry of tableNames


# === Key Vault =============================================================================================
def test_key_vault_uses_rbac_with_purge_protection(mod):
    props = one_of_type(mod("keyvault"), "Microsoft.KeyVault/vaults").body["properties"]
    assert props["enableRbacAuthorization"] is True
    assert props["enablePurgeProtection"] is True
    assert props["enableSoftDelete"] is True


def test_secrets_are_written_only_from_secure_optional_parameters_with_a_content_type(parsed):
    secrets = {}
    for path, tree in parsed.items():
        if path.endswith(".bicep"):
            found = resources_of_type(tree, "Microsoft.KeyVault/vaults/secrets")
            secrets.update({f"{path}:{symbol}": res for symbol, res in found.items() if not res.existing})
    names = {r.body["name"] for r in secrets.values()}
    assert names == set(SECRET_REFERENCES.values()) - {"azure-openai-api-key"} | {FEEDBACK_SECRET}
    for where, secret in secrets.items():
        if secret.body["name"] == "webhook-password":
            assert secret.condition is None, "the webhook password is required, so always written"
        else:
            assert secret.condition is not None, f"{where}: written only when a value is given"
        assert secret.body["properties"]["contentType"] == "text/plain", where
    keyvault = next(t for p, t in parsed.items() if p.endswith("keyvault.bicep"))
    for symbol, secret in resources_of_type(keyvault, "Microsoft.KeyVault/vaults/secrets").items():
        param = keyvault["parameters"][secret.body["properties"]["value"]]
        assert decorator(param, "secure"), symbol
        assert param["default"] == "" or symbol == "webhookPasswordSecret", symbol


def test_every_secret_looking_parameter_is_secure_and_optional_but_the_webhook_password(parsed):
    secretish = re.compile(r"(token|password|secret|apikey|signingkey)$", re.IGNORECASE)
    for path, tree in parsed.items():
        for name, param in (tree.get("parameters") or {}).items():
            if secretish.search(name):
                assert decorator(param, "secure"), f"{path}: {name} must be @secure()"
                if name == "webhookPassword":
                    continue  # required: test_webhook_credentials_are_required
                assert param["default"] == "", f"{path}: {name} must be optional, with no value in the template"


# === Monitoring, ACS, OpenAI =================================================================================
def test_log_analytics_and_app_insights_have_local_auth_off(mod):
    tree = mod("monitoring")
    workspace = one_of_type(tree, "Microsoft.OperationalInsights/workspaces")
    assert workspace.body["properties"]["features"]["disableLocalAuth"] is True
    insights = one_of_type(tree, "Microsoft.Insights/components")
    assert insights.body["properties"]["DisableLocalAuth"] is True
    assert insights.body["properties"]["WorkspaceResourceId"]


def test_email_service_has_an_azure_managed_domain_linked_to_communication_services(mod):
    tree = mod("communication")
    domain = one_of_type(tree, "Microsoft.Communication/emailServices/domains")
    assert domain.body["name"] == "AzureManagedDomain"
    assert domain.body["properties"]["domainManagement"] == "AzureManaged"
    acs = one_of_type(tree, "Microsoft.Communication/communicationServices")
    assert strings(acs.body["properties"]["linkedDomains"]) == {"managedDomain", "id"}
    assert tree["outputs"]["sender"]["value"] == "DoNotReply@${managedDomain.properties.mailFromSenderDomain}"


def test_openai_is_optional_entra_only_with_a_model_deployment(main, mod):
    condition, _ = module_body(main, "openAi")
    assert condition == "deployOpenAi"
    assert main["parameters"]["deployOpenAi"]["default"] is False
    tree = mod("openai")
    account = one_of_type(tree, "Microsoft.CognitiveServices/accounts")
    assert account.body["kind"] == "OpenAI"
    assert account.body["properties"]["disableLocalAuth"] is True
    deployment = one_of_type(tree, "Microsoft.CognitiveServices/accounts/deployments")
    assert deployment.body["properties"]["model"]["format"] == "OpenAI"


# === Network: deny by default, the app's subnet allowed (issue 11 point 9) =====================================
FIREWALLED = {
    "storage": ("Microsoft.Storage/storageAccounts", "Microsoft.Storage"),
    "keyvault": ("Microsoft.KeyVault/vaults", "Microsoft.KeyVault"),
    "openai": ("Microsoft.CognitiveServices/accounts", "Microsoft.CognitiveServices"),
}


def test_restrict_network_is_on_by_default_and_builds_the_vnet(main):
    assert main["parameters"]["restrictNetwork"]["default"] is True
    condition, network = module_body(main, "network")
    assert condition == "restrictNetwork"
    assert strings(main["variables"]["appSubnetId"]["value"]) >= {"restrictNetwork", "network", "appSubnetId"}
    for module in ("storage", "keyVault", "openAi", "functionApp"):
        assert module_body(main, module)[1]["params"]["subnetId"] == "appSubnetId", module
    for module in ("storage", "keyVault", "openAi"):
        params = module_body(main, module)[1]["params"]
        assert params["restrictNetwork"] == "restrictNetwork", module
        assert params["allowedIpAddresses"] == "allowedIps", module
    assert main["parameters"]["allowedIpAddresses"]["default"] == ""


def test_the_app_subnet_is_delegated_to_flex_with_service_endpoints(mod):
    vnet = one_of_type(mod("network"), "Microsoft.Network/virtualNetworks")
    (subnet,) = vnet.body["properties"]["subnets"]
    props = subnet["properties"]
    assert [d["properties"]["serviceName"] for d in props["delegations"]] == ["Microsoft.App/environments"]
    assert {e["service"] for e in props["serviceEndpoints"]} == {svc for _, svc in FIREWALLED.values()}
    assert props["defaultOutboundAccess"] is True, "the app must reach Databricks, ACS and App Insights"
    assert strings(props["networkSecurityGroup"]) == {"nsg", "id"}
    assert mod("network")["outputs"]["appSubnetId"]


@pytest.mark.parametrize("module", sorted(FIREWALLED))
def test_firewalls_deny_by_default_and_admit_only_the_subnet_and_listed_addresses(mod, module):
    type_, _ = FIREWALLED[module]
    tree = mod(module)
    res = one_of_type(tree, type_)
    acls = res.body["properties"]["networkAcls"]["operator"]
    assert acls["type"] == "conditional"
    assert acls["operands"]["condition"] == "restrictNetwork"
    assert acls["operands"]["true_value"] == "restrictedAcls"
    assert tree["parameters"]["restrictNetwork"]["default"] is True
    restricted = tree["variables"]["restrictedAcls"]["value"]
    assert restricted["defaultAction"] == "Deny"
    assert restricted.get("bypass", "None") in ("AzureServices", "None")
    rules = restricted["virtualNetworkRules"]["operator"]["operands"]
    assert strings(rules["condition"]) == {"empty", "subnetId"}
    assert [r["id"] for r in rules["false_value"]] == ["subnetId"]
    assert restricted["ipRules"] == "ipRules"
    assert tree["variables"]["ipRules"]["value"]["loop_type"]["detail"]["array_name"] == "allowedIpAddresses"
    assert tree["variables"]["openAcls"]["value"]["defaultAction"] == "Allow"


def test_function_app_is_vnet_integrated_when_a_subnet_is_given(mod):
    props = one_of_type(mod("functionapp"), "Microsoft.Web/sites").body["properties"]
    assert strings(props["virtualNetworkSubnetId"]) >= {"empty", "subnetId"}
    assert props["publicNetworkAccess"] == "Enabled", "Databricks calls the webhook from the internet"


# === Telemetry: workbook of the agent's metrics and the poison alert (issue 12 point 7) ========================
# The metric names and dimensions shared/telemetry.py emits (its INSTRUMENTS catalogue when present).
AGENT_METRICS = {
    "agent.decisions": {"action", "category", "source"},
    "agent.reruns": set(),
    "agent.rerun_outcomes": {"result"},
    "agent.emails": {"result"},
    "agent.llm.calls": set(),
    "agent.llm.tokens": {"kind"},
    "agent.llm.cost_usd": set(),
    "agent.time_to_action": set(),
    "agent.poison": {"reason"},
}


def instrument_names() -> set[str]:
    try:
        from shared.telemetry import INSTRUMENTS  # noqa: PLC0415  (lands with the telemetry branch)
    except ImportError:
        return set(AGENT_METRICS)
    return set(INSTRUMENTS)


@pytest.fixture(scope="module")
def workbook(mod):
    tree = mod("monitoring")
    res = one_of_type(tree, "Microsoft.Insights/workbooks")
    data = res.body["properties"]["serializedData"]["function"]
    assert data["type"] == "string", "serializedData must be the JSON text of the workbook object"
    content = tree["variables"][data["parameters"]["value_to_convert"]]["value"]
    queries = tree["variables"]["workbookQueries"]["value"]
    return res, content, queries


def test_workbook_is_a_shared_workbook_on_app_insights(workbook):
    res, content, _ = workbook
    assert res.body["kind"] == "shared"
    assert res.body["properties"]["category"] == "workbook"
    assert strings(res.body["properties"]["sourceId"]) == {"appInsights", "id"}
    assert res.body["name"]["function"]["type"] == "guid", "a workbook's name must be a GUID"
    assert content["version"] == "Notebook/1.0"
    assert strings(content["fallbackResourceIds"]) == {"appInsights", "id"}


def test_workbook_shows_every_agent_metric_from_custom_metrics(workbook):
    _, content, queries = workbook
    items = [i for i in content["items"] if i["type"] == 3]
    texts = []
    for item in items:
        query = item["content"]["query"]
        key = strings(query) & set(queries)
        assert key, f"{item['name']}: query must come from workbookQueries"
        text = queries[key.pop()]
        assert text.startswith("customMetrics | where name"), item["name"]
        assert item["content"]["timeContextFromParameter"] == "TimeRange", item["name"]
        assert item["content"]["resourceType"] == "microsoft.insights/components"
        texts.append(text)
    shown = set(re.findall(r'"(agent\.[a-z_.]+)"', " ".join(texts)))
    assert instrument_names() <= shown, instrument_names() - shown
    assert set(AGENT_METRICS) <= shown
    for metric, dims in AGENT_METRICS.items():
        for dim in dims:
            assert any(metric in t and f"customDimensions.{dim}" in t for t in texts), f"{metric} by {dim}"
    (params,) = [i for i in content["items"] if i["type"] == 9]
    assert [p["name"] for p in params["content"]["parameters"]] == ["TimeRange"]
    assert sum("${grain}" in t for t in texts) >= 5, "time series bin by the workbook's own grain"


def test_workbook_grain_follows_the_time_range(mod):
    assert mod("monitoring")["variables"]["grain"]["value"] == "{TimeRange:grain}"


def test_poison_alert_fires_on_any_poison_message_in_15_minutes(mod):
    tree = mod("monitoring")
    alert = one_of_type(tree, "Microsoft.Insights/scheduledQueryRules")
    assert alert.condition is None, "the alert exists in every deployment"
    props = alert.body["properties"]
    assert strings(props["scopes"]) == {"appInsights", "id"}
    assert props["windowSize"] == "PT15M" and props["evaluationFrequency"] == "PT5M"
    assert props["enabled"] is True
    (criterion,) = props["criteria"]["allOf"]
    query = tree["variables"][criterion["query"]]["value"]
    assert 'name == "agent.poison"' in query and "valueSum > 0" in query
    assert (criterion["timeAggregation"], criterion["operator"], criterion["threshold"]) == ("Count", "GreaterThan", 0)
    assert [d["name"] for d in criterion["dimensions"]] == ["reason"] and "customDimensions.reason" in query
    groups = props["actions"]["actionGroups"]["operator"]["operands"]
    assert strings(groups["condition"]) == {"empty", "alertEmail"}
    assert strings(groups["false_value"]) == {"actionGroup", "id"}


def test_action_group_emails_the_address_given(main, mod):
    tree = mod("monitoring")
    group = one_of_type(tree, "Microsoft.Insights/actionGroups")
    assert strings(group.condition) == {"empty", "alertEmail"}
    (receiver,) = group.body["properties"]["emailReceivers"]
    assert receiver["emailAddress"] == "alertEmail"
    assert len(group.body["properties"]["groupShortName"]) <= 12
    assert module_body(main, "monitoring")[1]["params"]["alertEmail"] == "alertEmail"
    assert main["parameters"]["alertEmail"]["default"] == ""


# === Role assignments ========================================================================================
class Assignment(typing.NamedTuple):
    symbol: str
    role: str  # the role variable's name in rbac.bicep
    condition: object  # None when unconditional
    loop: dict | None  # pycep's loop_type when one assignment per item of an array
    scope: object  # a symbol, or an index_accessor tree for `scope: queues[i]`
    body: dict


@pytest.fixture(scope="module")
def assignments(mod) -> dict[str, Assignment]:
    """{symbol: Assignment} for every role assignment in rbac.bicep."""
    tree = mod("rbac")
    out = {}
    for symbol, raw in tree["resources"].items():
        if raw["type"] != "Microsoft.Authorization/roleAssignments":
            continue
        config, loop, condition = raw["config"], None, None
        if "loop_type" in config:
            loop, condition, config = config["loop_type"], config["condition"], config["config"]
        elif "condition" in config and "config" in config and "name" not in config:
            condition, config = config["condition"], config["config"]
        role_id = config["properties"]["roleDefinitionId"]
        if "function" in role_id:  # subscriptionResourceId('...roleDefinitions', <built-in role variable>)
            role = role_id["function"]["parameters"]["resource_name_1"]
        else:  # <custom role defined in the file>.id
            role = role_id["operator"]["operands"]["operand_1"]
        out[symbol] = Assignment(symbol, role, condition, loop, config["scope"], config)
    return out


def scoped_by_index(assignment: Assignment) -> str | None:
    """`queues` for `scope: queues[i]` in a loop, else None."""
    scope = assignment.scope
    if isinstance(scope, dict) and scope.get("operator", {}).get("type") == "index_accessor":
        return scope["operator"]["operands"]["operand_1"]
    return None


def test_role_ids_are_named_variables_with_the_built_in_guids(mod):
    variables = mod("rbac")["variables"]
    assert {name: variables[name]["value"] for name in ROLE_IDS} == ROLE_IDS


def test_every_assignment_is_for_the_identity_with_a_stable_name(assignments):
    for a in assignments.values():
        if a.symbol == "deployerSecretsOfficer":
            continue
        assert a.body["properties"]["principalId"] == "principalId", a.symbol
        assert a.body["properties"]["principalType"] == "ServicePrincipal", a.symbol
        name = a.body["name"]["function"]
        assert name["type"] == "guid", a.symbol
        assert "principalId" in strings(name["parameters"]), a.symbol


@pytest.mark.parametrize(
    ("symbol", "role", "scope_symbol", "scope_type"),
    [
        ("blobOwner", "storageBlobDataOwner", "storage", "Microsoft.Storage/storageAccounts"),
        ("metricsPublisher", "monitoringMetricsPublisher", "appInsights", "Microsoft.Insights/components"),
        ("emailSender", "communicationAndEmailServiceOwner", "communicationService",
         "Microsoft.Communication/communicationServices"),
        ("openAiUser", "cognitiveServicesOpenAiUser", "openAi", "Microsoft.CognitiveServices/accounts"),
    ],
)
def test_single_resource_roles_sit_on_their_own_resource(mod, assignments, symbol, role, scope_symbol, scope_type):
    a = assignments[symbol]
    assert a.role == role
    assert a.scope == scope_symbol
    assert resource(mod("rbac"), scope_symbol).type == scope_type
    assert strings(a.body["name"]["function"]["parameters"]) == {scope_symbol, "id", "principalId", role}


@pytest.mark.parametrize(
    ("symbol", "role", "collection", "child_type", "array"),
    [
        ("queueContributors", "storageQueueDataContributor", "queues",
         "Microsoft.Storage/storageAccounts/queueServices/queues", "queueNames"),
        ("tableContributors", "storageTableDataContributor", "tables",
         "Microsoft.Storage/storageAccounts/tableServices/tables", "tableNames"),
        ("secretReaders", "keyVaultSecretsUser", "secrets", "Microsoft.KeyVault/vaults/secrets", "secretNames"),
    ],
)
def test_queue_table_and_secret_roles_are_one_per_child_resource(mod, assignments, symbol, role, collection,
                                                                 child_type, array):
    # Issue 11 point 9: no Queue/Table Data Contributor on the account, no Secrets User on the vault.
    tree = mod("rbac")
    a = assignments[symbol]
    assert a.role == role
    assert a.loop["detail"]["array_name"] == array
    assert scoped_by_index(a) == collection
    child = tree["resources"][collection]
    assert child["type"] == child_type and child["existing"] is True
    assert child["config"]["loop_type"]["detail"]["array_name"] == array
    assert strings(a.body["name"]["function"]["parameters"]) >= {collection, "id", "principalId", role}


def test_account_wide_queue_and_table_roles_only_when_asked_for(main, assignments):
    assert main["parameters"]["storageRoleScope"]["default"] == "resource"
    assert assignments["queueContributors"].condition == "perResource"
    assert assignments["tableContributors"].condition == "perResource"
    for symbol in ("accountQueueContributor", "accountTableContributor"):
        assert assignments[symbol].scope == "storage"
        assert strings(assignments[symbol].condition) == {"perResource"}, symbol
    # Nothing else is granted on the account or the vault as a whole to the identity.
    wide = {a.symbol for a in assignments.values() if a.scope in ("storage", "vault") and a.condition is None}
    assert wide == {"blobOwner"}


def test_no_key_vault_secrets_user_on_the_vault(assignments):
    users = [a for a in assignments.values() if a.role == "keyVaultSecretsUser"]
    assert [a.symbol for a in users] == ["secretReaders"]
    assert users[0].scope != "vault"


def test_main_grants_the_queues_tables_and_secrets_the_app_uses(main):
    _, rbac = module_body(main, "rbac")
    params = rbac["params"]
    assert strings(params["queueNames"]) == {"storage", "outputs", "queueName", "poisonQueueName"}
    assert params["tableNames"] == "allTableNames"
    assert params["secretNames"] == "appSecretNames"
    _, storage = module_body(main, "storage")
    assert storage["params"]["tableNames"] == "allTableNames", "the tables granted are the tables created"


def test_every_table_the_settings_name_is_created_and_granted(main):
    # Each *_table setting (with its default name) must be in allTableNames: named settings + extraTableNames.
    # Tables other features add (feedback, learned rules) come in extraTableNames until their settings exist.
    variables = main["variables"]
    table_vars = variables["tableNames"]["value"]
    named = {table_vars[key] for ref in variables["namedTables"]["value"] for key in strings(ref) if key in table_vars}
    assert len(named) == len(table_vars) == 3
    extra = set(main["parameters"]["extraTableNames"]["default"])
    assert strings(variables["allTableNames"]["value"]) == {"union", "namedTables", "extraTableNames"}
    defaults = {f.default for name, f in Settings.model_fields.items() if name.endswith("_table")}
    assert defaults and defaults <= named | extra, defaults - (named | extra)
    assert {"agentfeedback", "agentlearnedrules"} <= extra


def test_secret_grants_follow_the_settings_that_read_each_secret(main):
    variables = main["variables"]
    union = variables["appSecretNames"]["value"]["function"]
    assert union["type"] == "union"
    parts = list(union["parameters"].values())
    assert parts[-1] == "extraKeyVaultSecretNames"
    by_secret = {}
    for part in parts[:-1]:
        value = variables[part]["value"]
        if isinstance(value, list):
            by_secret[value[0]] = None
            continue
        operands = value["operator"]["operands"]
        branch = operands["true_value"] or operands["false_value"]
        by_secret[branch[0]] = operands["condition"]
    assert by_secret["webhook-password"] is None, "always granted: always required"
    assert {"empty", "feedbackSigningKey"} <= strings(by_secret[FEEDBACK_SECRET])
    assert {"databricksAuth", "pat"} <= strings(by_secret["databricks-pat"])
    assert {"databricksAuth", "oauth-m2m"} <= strings(by_secret["databricks-client-secret"])
    assert {"emailTransport", "smtp"} <= strings(by_secret["email-password"])
    assert {"emailTransport", "acs", "acsAuth", "connectionString"} <= strings(by_secret["acs-connection-string"])
    assert {"deployOpenAi", "openAiEndpoint", "openAiAuth", "key"} <= strings(by_secret["azure-openai-api-key"])
    # Same secrets as the app settings' Key Vault references, plus the one the app reads through KEY_VAULT_URL.
    assert set(by_secret) == set(SECRET_REFERENCES.values()) | {FEEDBACK_SECRET}
    assert main["parameters"]["extraKeyVaultSecretNames"]["default"] == []


def test_acs_role_is_the_built_in_one_unless_the_custom_sender_role_is_chosen(main, mod, assignments):
    assert main["parameters"]["acsRole"]["default"] == "builtin"
    assert assignments["emailSender"].condition == "builtinAcsRole"
    custom = assignments["customEmailSender"]
    assert custom.condition == "customAcsRole" and custom.scope == "communicationService"
    assert custom.role == "acsSenderRole"
    role = resource(mod("rbac"), "acsSenderRole")
    assert role.condition == "customAcsRole"
    actions = role.body["properties"]["permissions"][0]["actions"]
    assert not [a for a in actions if "listkeys" in a.lower() or "regeneratekey" in a.lower() or
                a.lower().endswith("/delete") or "*" in a], actions
    assert "resource_group" in json.dumps(role.body["properties"]["assignableScopes"])


def test_optional_roles_follow_their_feature(main, assignments):
    assert assignments["openAiUser"].condition == "grantOpenAi"
    for symbol in ("blobOwner", "metricsPublisher", "secretReaders"):
        assert assignments[symbol].condition is None, symbol
    condition, rbac = module_body(main, "rbac")
    assert condition is None
    assert rbac["params"]["grantOpenAi"] == "deployOpenAi"
    assert {"emailTransport", "acs", "acsAuth", "entra"} <= strings(rbac["params"]["grantCommunication"])
    assert "openAi" in rbac["dependsOn"]


def test_the_deployer_may_write_secrets_but_gets_nothing_else(assignments):
    a = assignments["deployerSecretsOfficer"]
    assert a.role == "keyVaultSecretsOfficer"
    assert a.scope == "vault"
    assert a.body["properties"]["principalId"] == "deployerPrincipalId"
    assert strings(a.condition) == {"empty", "deployerPrincipalId"}


def test_no_broad_role_appears_anywhere(parsed):
    for path, tree in parsed.items():
        found = {guid for guid in BROAD_ROLE_IDS if guid in json.dumps(tree)}
        assert not found, f"{path}: {[BROAD_ROLE_IDS[g] for g in found]}"


# === Outputs and azd ========================================================================================
def test_webhook_url_output_has_no_function_key(main):
    url = main["outputs"]["WEBHOOK_URL"]["value"]
    assert url == "https://${functionApp.outputs.defaultHostName}/api/databricks/webhook"


def test_no_output_exposes_a_key_or_secret(parsed):
    secure_params = {
        name for tree in parsed.values() for name, p in (tree.get("parameters") or {}).items()
        if decorator(p, "secure")
    }
    for path, tree in parsed.items():
        for name, output in (tree.get("outputs") or {}).items():
            text = json.dumps(output["value"]).lower()
            assert "listkeys" not in text and "code=" not in text and "/host/default" not in text, f"{path}:{name}"
            assert not strings(output["value"]) & secure_params, f"{path}:{name} outputs a secure parameter"


def test_outputs_azd_and_the_readme_rely_on(main):
    needed = {"AZURE_KEY_VAULT_NAME", "AZURE_FUNCTION_APP_NAME", "AZURE_RESOURCE_GROUP", "WEBHOOK_URL",
              "MANAGED_IDENTITY_CLIENT_ID", "EMAIL_SENDER_ADDRESS"}
    assert needed <= set(main["outputs"])
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]*", name) for name in main["outputs"]), "azd outputs are UPPER_SNAKE"


def test_parameters_file_matches_main_and_keeps_the_webhook_password_in_the_vault(main):
    params = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    declared = main["parameters"]
    assert set(params) <= set(declared), f"unknown parameters: {set(params) - set(declared)}"
    required = {name for name, p in declared.items() if p["default"] is None and not decorator(p, "secure")}
    assert required <= set(params), f"required parameters azd cannot fill: {required - set(params)}"
    assert params["webhookPassword"]["value"] == "$(secretOrRandomPassword ${AZURE_KEY_VAULT_NAME} webhook-password)"
    assert params["feedbackSigningKey"]["value"] == (
        "$(secretOrRandomPassword ${AZURE_KEY_VAULT_NAME} feedback-signing-key)"
    )
    assert params["restrictNetwork"]["value"] == "${RESTRICT_NETWORK=true}"
    assert params["allowedIpAddresses"]["value"] == "${ALLOWED_IP_ADDRESSES}"
    assert params["alertEmail"]["value"] == "${ALERT_EMAIL}"
    assert params["agentMode"]["value"] == "${AGENT_MODE=observe}"
    assert "databricksPatToken" not in params, "a PAT goes into Key Vault by hand, never into the azd .env file"
    assert "databricksClientSecret" not in params, "an OAuth secret goes into Key Vault by hand, never into .env"
    assert params["databricksClientId"]["value"] == "${DATABRICKS_CLIENT_ID=}"


# === checkov skips and .funcignore ========================================================================
def test_every_checkov_skip_gives_a_reason():
    for path in INFRA.rglob("*.bicep"):
        for line in path.read_text().splitlines():
            if "#checkov:skip=" in line:
                match = re.search(r"#checkov:skip=(CKV2?_[A-Z]+_\d+):(.{20,})", line)
                assert match, f"{path.name}: skip without a real reason: {line.strip()}"


def test_funcignore_ships_the_app_and_nothing_else():
    lines = (REPO / ".funcignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    for needed in (".venv*", "node_modules", "tests", "localdev", "infra", ".git*", "local.settings.json",
                   "__pycache__", ".ci", "docs"):
        assert needed in patterns, needed
    for shipped in ("function_app.py", "host.json", "requirements.txt", "shared"):
        assert shipped not in patterns and f"/{shipped}" not in patterns, shipped
    assert "*.md" not in patterns, "an unanchored *.md would drop .md prompts under shared/; use /*.md"


# === scripts/check_infra.py fails on what checkov lets through =============================================
@pytest.mark.slow
def test_check_script_fails_on_parse_errors_failed_checks_and_unexplained_skips(tmp_path):
    checkov = CHECKOV_VENV / "bin" / "checkov"
    if not checkov.is_file():
        (pytest.fail if REQUIRE_CHECKOV else pytest.skip)(f"checkov absent at {checkov}")
    # pycep 0.5.1 cannot parse @export() (nor `func`); checkov then reports nothing for the file and exits 0.
    (tmp_path / "typed.bicep").write_text("@export()\nvar shared = 'x'\n")
    (tmp_path / "open.bicep").write_text(
        "resource st 'Microsoft.Storage/storageAccounts@2023-05-01' = {\n"
        "  name: 'stopen'\n  location: 'westeurope'\n  kind: 'StorageV2'\n  sku: {\n    name: 'Standard_LRS'\n  }\n"
        "  properties: {\n    allowBlobPublicAccess: true\n    minimumTlsVersion: 'TLS1_0'\n  }\n}\n"
    )
    (tmp_path / "lazy.bicep").write_text(
        "resource kv 'Microsoft.KeyVault/vaults@2023-07-01' = {\n  #checkov:skip=CKV_AZURE_110\n"
        "  name: 'kvlazy'\n  location: 'westeurope'\n  properties: {\n    tenantId: subscription().tenantId\n"
        "    sku: {\n      family: 'A'\n      name: 'standard'\n    }\n  }\n}\n"
    )
    proc = subprocess.run(
        [sys.executable, str(CHECK_SCRIPT), "--checkov", str(checkov), "--infra", str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "did not parse" in proc.stderr and "typed.bicep" in proc.stderr
    assert "FAILED CKV_AZURE_44" in proc.stderr  # TLS 1.0 on open.bicep
    assert "SKIPPED WITHOUT A REASON CKV_AZURE_110" in proc.stderr


# === Documents that must keep up with the templates ============================================================
def test_security_md_says_how_to_rotate_every_secret_the_app_reads(main):
    text = (REPO / "SECURITY.md").read_text()
    rotation = text.split("## Rotating each secret", 1)[1]
    for secret in set(SECRET_REFERENCES.values()) | {FEEDBACK_SECRET}:
        assert f"`{secret}`" in rotation, f"SECURITY.md: no rotation for {secret}"
    for role in ("CAN_VIEW", "CAN_MANAGE_RUN", "CAN_MANAGE"):
        assert f"`{role}`" in text
    assert "Azure OpenAI" in text.split("## What leaves the tenant", 1)[1]


def test_deploy_md_lists_every_azd_variable_of_the_parameters_file():
    text = (REPO / "docs" / "deploy.md").read_text()
    params = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert len(params) > 15
    for name, value in params.items():
        variables = re.findall(r"\$\{([A-Z_]+)", value["value"])
        for variable in variables:
            if variable == "AZURE_KEY_VAULT_NAME":
                continue
            assert f"`{variable}`" in text, f"docs/deploy.md does not list {variable} ({name})"


@pytest.mark.parametrize(
    ("env", "warns"),
    [
        ({"AZURE_KEY_VAULT_NAME": "kv-x"}, True),  # a later provision, firewall closed, no address listed
        ({}, False),  # the first provision: no vault yet, azd generates the passwords
        ({"AZURE_KEY_VAULT_NAME": "kv-x", "ALLOWED_IP_ADDRESSES": "203.0.113.7"}, False),
        ({"AZURE_KEY_VAULT_NAME": "kv-x", "RESTRICT_NETWORK": "false"}, False),
    ],
)
def test_preprovision_hook_warns_before_azd_cannot_read_the_vault(parsed, env, warns):
    hook = parsed["azure.yaml"]["hooks"]["preprovision"]["posix"]
    assert hook["shell"] == "sh" and hook["continueOnError"] is True, "a warning, never a failed provision"
    proc = subprocess.run(["sh", "-c", hook["run"]], env={"PATH": os.environ.get("PATH", "")} | env,
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0
    assert ("ALLOWED_IP_ADDRESSES is empty" in proc.stdout) is warns, proc.stdout
