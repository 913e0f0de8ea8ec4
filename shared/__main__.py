"""`python -m shared <command>`: the agent's command line.

Each command lives in shared/commands/<module>.py with `add_arguments(parser)` and `run(args) -> int`,
and is imported only when it runs (so `classify` does not pay for Key Vault, nor `doctor` for the rules).
Every command takes `--settings FILE` (default: ./local.settings.json when present) and has its settings
validated before it starts (shared/commands/preflight.py); a pipe closed early (`| head`) ends it quietly.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from shared.commands.preflight import add_settings_argument, prepare
from shared.exceptions import AgentError, ConfigError

COMMANDS: dict[str, tuple[str, str]] = {
    "classify": ("shared.commands.classify", "classify failures: JSON lines or a raw trace on stdin, or --text"),
    "eval": ("shared.commands.evaluate", "measure the classifier on a labeled set (default: tests/data/dev-2.jsonl)"),
    "bench": ("shared.commands.bench", "measure the classifier's speed"),
    "doctor": ("shared.commands.doctor", "check the configuration and every connection"),
    "email-test": ("shared.commands.email_test", "send a sample diagnosis through the configured email transport"),
    "decisions": ("shared.commands.decisions", "list recent decisions from Table Storage"),
    "poison": ("shared.commands.poison", "list failures in the poison queue, or queue them again (list|requeue)"),
    "llm-report": ("shared.commands.llm_report", "prompt size and cost of LLM analysis on a labeled set"),
    "finetune": ("shared.commands.finetune", "fine-tuning data from verified decisions: prepare, submit, status"),
    "report": ("shared.commands.report", "decisions, accuracy, cost and advice over a window (--html writes the page)"),
    "rules": ("shared.commands.rules", "learned rules: list, disable, or export one as a TOML rule entry"),
}

# 128 + SIGPIPE, what a shell reports for a command whose reader went away.
BROKEN_PIPE = 141


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        return _main(argv)
    except BrokenPipeError:
        _quiet_stdout()
        return BROKEN_PIPE
    except KeyboardInterrupt:
        return 130
    except ConfigError as exc:  # found by a command after the preflight (a secret's name, a file it reads)
        print(f"python -m shared: {exc}", file=sys.stderr)
        return 2
    except AgentError as exc:  # e.g. storage or a service unreachable: say so, no traceback
        print(f"python -m shared: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared", description=__doc__.splitlines()[0],
        epilog="Every command takes --settings FILE (default: ./local.settings.json when present; variables set in "
        "the environment win). `python -m shared COMMAND --help` lists a command's options.")
    sub = parser.add_subparsers(dest="command", metavar="command")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        parser.print_help(sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    name = argv[0]
    module = importlib.import_module(COMMANDS[name][0])
    command_parser = argparse.ArgumentParser(prog=f"python -m shared {name}", description=COMMANDS[name][1])
    module.add_arguments(command_parser)
    own_settings = getattr(module, "READS_SETTINGS_ITSELF", False)
    if not own_settings:
        try:
            add_settings_argument(command_parser)
        except argparse.ArgumentError:  # the command defines --settings itself: it is still applied before it runs
            pass
    args = command_parser.parse_args(argv[1:])
    if not own_settings:
        stop = prepare(name, args)
        if stop is not None:
            return stop
    code = int(module.run(args) or 0)
    sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at interpreter exit
    return code


def _quiet_stdout() -> None:
    # Python flushes stdout again at exit and would print a second BrokenPipeError: point it at devnull.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
