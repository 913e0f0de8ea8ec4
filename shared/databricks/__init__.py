"""The Databricks side of the agent: the JobsApi interface, its models, the HTTP client, auth and errors.

Import from the submodules (`shared.databricks.client`, `.errors`, ...); this package imports nothing heavy.
"""
