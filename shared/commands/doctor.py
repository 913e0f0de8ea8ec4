"""`python -m shared doctor`: is this configuration ready? Checks the settings and every connection it can.

The command line only: the checks and their output are in shared/doctor/, the generated settings docs
(--list-settings, --example-settings) in shared/settings/docs.py.

Exit code: 1 when any required check is NOT READY, 2 when the settings file cannot be read, else 0.
"""

from __future__ import annotations

import argparse
import os
import sys

from shared.doctor import doctor
from shared.exceptions import ConfigError
from shared.settings.docs import DOCS, example_settings, settings_markdown
from shared.settings.local_file import local_settings_path, read_local_settings

# The doctor reads its settings itself (it can also ignore the environment): `python -m shared` leaves it alone.
READS_SETTINGS_ITSELF = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--settings", metavar="FILE",
                        help="a local.settings.json whose Values to check (default: ./local.settings.json if present)")
    parser.add_argument("--ignore-environment", action="store_true",
                        help="check only the settings file, not the process environment")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per connection check (default 10)")
    parser.add_argument("--llm-call", action="store_true",
                        help="also send a 1-token chat completion to the Azure OpenAI deployment (costs a few tokens)")
    parser.add_argument("--list-settings", action="store_true",
                        help=f"print the settings table (markdown, as in {DOCS}) and exit")
    parser.add_argument("--example-settings", action="store_true",
                        help="print local.settings.json.example (every setting, described) and exit")


def run(args: argparse.Namespace) -> int:
    if args.list_settings:
        sys.stdout.write(settings_markdown())
        return 0
    if args.example_settings:
        sys.stdout.write(example_settings())
        return 0
    env: dict[str, str] = {}
    sources = []
    path = local_settings_path(args.settings)
    if path:
        try:
            env.update(read_local_settings(path))
        except ConfigError as exc:
            sys.stderr.write(f"{exc}\n")
            return 2
        sources.append(str(path))
    if not args.ignore_environment:
        env.update(os.environ)
        sources.append("the environment (wins over the file)" if path else "the environment")
    return doctor(env, as_json=args.json, timeout=args.timeout, llm_call=args.llm_call,
                  source=" + ".join(sources) or "nothing")
