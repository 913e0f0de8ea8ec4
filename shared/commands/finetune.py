"""`python -m shared finetune prepare|submit|status`: fine-tuning data from verified decisions, and the job."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    steps = parser.add_subparsers(dest="step", required=True, metavar="step")
    prepare = steps.add_parser("prepare", help="write train.jsonl / validation.jsonl from verified decisions")
    prepare.add_argument("--since", default="90d", help="how far back to read decisions (default 90d)")
    prepare.add_argument("--out", default="finetune-data", help="folder for the two files (default ./finetune-data)")
    prepare.add_argument("--validation", type=float, default=0.2, help="share held out for validation (default 0.2)")
    prepare.add_argument("--min-per-class", type=int, default=10, help="refuse below this many per class (default 10)")
    submit = steps.add_parser("submit", help="upload the files and create the fine-tuning job")
    submit.add_argument("--train", default="finetune-data/train.jsonl")
    submit.add_argument("--validation", default="finetune-data/validation.jsonl")
    submit.add_argument("--model", default="gpt-4o-mini-2024-07-18", help="base model to fine-tune")
    submit.add_argument("--suffix", default="dbx-agent", help="added to the fine-tuned model's name")
    status = steps.add_parser("status", help="the job's state and latest events")
    status.add_argument("job_id")


def run(args: argparse.Namespace) -> int:
    from shared.finetune.service import FineTuneError
    from shared.settings import load_settings

    settings = load_settings()
    try:
        if args.step == "prepare":
            return _prepare(settings, args)
        from shared.finetune.service import openai_client, status, submit

        client = openai_client(settings)
        if args.step == "submit":
            validation = Path(args.validation) if args.validation and Path(args.validation).exists() else None
            done = submit(client, Path(args.train), validation, model=args.model, suffix=args.suffix)
            print(f"fine-tuning job {done.job_id} created ({done.status}); training file {done.training_file}"
                  + (f", validation file {done.validation_file}" if done.validation_file else ""))
            print(f"follow it with: python -m shared finetune status {done.job_id}")
            return 0
        print(json.dumps(status(client, args.job_id), indent=2))
        return 0
    except FineTuneError as exc:
        print(f"finetune {args.step}: {exc}", file=sys.stderr)
        return 1


def _prepare(settings, args: argparse.Namespace) -> int:  # noqa: ANN001 - Settings, imported lazily
    from shared.decision import utcnow
    from shared.finetune.dataset import NotEnoughExamples, prepare
    from shared.finetune.labels import verified
    from shared.report.sources import feedback_reader, parse_window
    from shared.store import TableDecisionStore
    from shared.wiring import table

    since = utcnow() - parse_window(args.since)
    records = TableDecisionStore(table(settings, settings.decisions_table)).recent(since)
    items = verified(records, feedback_reader(settings)(since))
    try:
        done = prepare(items, Path(args.out), validation_share=args.validation, min_per_class=args.min_per_class,
                       max_prompt_tokens=settings.llm_max_prompt_tokens)
    except NotEnoughExamples as exc:
        print(f"finetune prepare: {exc}", file=sys.stderr)
        return 1
    classes = sorted(set(done.train_counts) | set(done.validation_counts))
    print(f"{'class':<16}{'train':>7}{'validation':>12}")
    for name in classes:
        print(f"{name:<16}{done.train_counts[name]:>7}{done.validation_counts[name]:>12}")
    print(f"wrote {done.train} and {done.validation} (redacted; nothing was sent anywhere)")
    return 0
