"""Local development tools: the Databricks workspace simulator, the Functions runner, Azurite and the demo.

Never deployed (.funcignore) and never imported by shared/: the app's production path has no fakes in it.
"""
