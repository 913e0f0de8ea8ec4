"""databricks-ai-agent: the app's package. All logic lives here; function_app.py only parses triggers.

Keep this file free of imports: the Functions worker imports function_app (and so this package) when it
indexes functions, and every module imported here is paid for on each cold start.
"""
