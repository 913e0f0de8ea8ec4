"""The agent's settings, one package: values (one value), workspaces (DATABRICKS_WORKSPACES), problems (several
values together), source (where values come from), model (the Settings object), check (every problem at once,
and load_settings), docs (the generated documentation). The rest of the app imports from here.
"""

from shared.settings.check import check_settings, load_settings
from shared.settings.model import Settings, env_name, is_secret
from shared.settings.problems import FEATURES, InvalidSettings, SettingProblem
from shared.settings.values import KEY_VAULT_REFERENCE_FIX, KEY_VAULT_REFERENCE_PREFIX, SECRET_NAME_PATTERN
from shared.settings.workspaces import WorkspaceConfig

__all__ = ["FEATURES", "KEY_VAULT_REFERENCE_FIX", "KEY_VAULT_REFERENCE_PREFIX", "SECRET_NAME_PATTERN",
           "InvalidSettings", "SettingProblem", "Settings", "WorkspaceConfig", "check_settings", "env_name",
           "is_secret", "load_settings"]
