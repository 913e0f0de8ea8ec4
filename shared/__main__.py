"""`python -m shared <command>`: the agent's command line.

Each command lives in shared/commands/<module>.py with `add_arguments(parser)` and `run(args) -> int`,
and is imported only when it runs (so `classify` does not pay for Key Vault, nor `doctor` for the rules).
"""

from __future__ import annotations

import argparse
import importlib
import sys

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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m shared", description=__doc__.splitlines()[0])
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
    return int(module.run(command_parser.parse_args(argv[1:])) or 0)


if __name__ == "__main__":
    sys.exit(main())
