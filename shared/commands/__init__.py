"""Command-line subcommands of `python -m shared`; each module has add_arguments(parser) and run(args)."""
