"""The prompt: text files beside this module, filled with masked, bounded data about one failure.

The error goes in as data between <failure_text> delimiters (any delimiter inside the data is defused),
together with everything else a job author controls (job name, task keys, cluster spec, run state),
trimmed to fit LLM_MAX_PROMPT_TOKENS. Never the raw log: the input is the classifier's excerpt (at most
2,000 characters), masked by shared.redaction, with long runs of stack frames folded.

Tokens are estimated, not counted: tiktoken downloads its BPE files at run time, which this app cannot rely
on. The estimate is characters / 3 (English prose is about 4 characters a token; stack traces, ids and
paths tokenize worse), which overestimates on purpose, so the bound holds. The service's own count
(usage.prompt_tokens) is what the decision records.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from string import Template
from typing import Any

from shared.llm.schema import FailureAnalysis

PROMPTS_DIR = Path(__file__).parent / "prompts"
PROMPT_NAME = "analyze_v2"
CHARS_PER_TOKEN = 3.0
TOKENS_PER_MESSAGE = 4
# Below this the model cannot say anything useful. The context fields are bounded (about 250 tokens in all),
# so with LLM_MAX_PROMPT_TOKENS >= 1600 the floor never pushes a prompt past the bound.
MIN_FAILURE_CHARS = 300
MAX_TASKS = 5
FRAMES_KEPT = 3

_DELIMITER = re.compile(r"</?\s*failure_text\s*>", re.I)
_JAVA_FRAME = re.compile(r"^\s*at [\w$.<>/-]+\(.*\)\s*$")
_PY_FRAME = re.compile(r'^\s*File "[^"]*", line \d+')


@dataclass(frozen=True)
class Prompt:
    """The messages to send, and what went into them."""

    messages: list[dict[str, str]]
    version: str
    estimated_tokens: int
    failure_chars: int  # characters of failure text in the prompt
    trimmed: bool  # the failure text had to be cut to fit the bound


@lru_cache(maxsize=None)
def _templates(name: str = PROMPT_NAME) -> tuple[str, str]:
    from shared.taxonomy import prompt_lines

    # The categories come from the one category table (shared/categories.toml), never written twice.
    system = Template((PROMPTS_DIR / f"{name}.system.txt").read_text(encoding="utf-8").strip()).substitute(
        categories=prompt_lines())
    user = (PROMPTS_DIR / f"{name}.user.txt").read_text(encoding="utf-8").strip()
    return system, user


@lru_cache(maxsize=None)
def prompt_version(name: str = PROMPT_NAME) -> str:
    """The prompt files' name and a hash of their text and the schema: part of the cache key, so editing a
    prompt or the answer's schema never serves an answer given to the old one."""
    system, user = _templates(name)
    digest = hashlib.sha256("\0".join((system, user, _schema_json())).encode()).hexdigest()[:10]
    return f"{name}-{digest}"


@lru_cache(maxsize=None)
def _schema_json() -> str:
    return json.dumps(FailureAnalysis.model_json_schema(), separators=(",", ":"))


def estimate_tokens(text: str) -> int:
    """A deliberately high estimate of `text`'s tokens (characters / 3)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def schema_tokens() -> int:
    """The structured-output schema is sent with every request and counts as prompt tokens."""
    return estimate_tokens(_schema_json()) + 20  # + the response_format wrapper (name, strict, type)


def build_prompt(
    failure_text: str,
    *,
    context: dict[str, Any],
    run_state: str,
    rules: str,
    max_prompt_tokens: int,
    redact: Any = None,
) -> Prompt:
    """The two messages for one failure, within `max_prompt_tokens` (estimated, schema included).

    `redact` masks secrets (shared.redaction.redact); every value from outside passes through it.
    """
    mask = redact or (lambda text: text)
    system, user_template = _templates()
    fields = {
        "job_name": _field(mask(str(context.get("job_name") or "(unknown)")), 120),
        "tasks": _field(mask(_tasks(context.get("tasks"))), 200),
        "attempt": _attempt(context),
        "cluster": _field(mask(describe_cluster(context.get("cluster"))), 150),
        "run_state": _field(mask(run_state or "(not given)"), 200),
        "rules": _field(mask(rules), 240),
    }
    failure = _defuse(fold_frames(mask(failure_text or "").strip())) or "(no error text)"
    fixed = (
        estimate_tokens(system)
        + estimate_tokens(Template(user_template).safe_substitute(fields, failure_text=""))
        + 2 * TOKENS_PER_MESSAGE
        + schema_tokens()
    )
    room = max(MIN_FAILURE_CHARS, int((max_prompt_tokens - fixed) * CHARS_PER_TOKEN))
    trimmed = len(failure) > room
    if trimmed:
        failure = trim_middle(failure, room)
    user = Template(user_template).safe_substitute(fields, failure_text=failure)
    estimated = estimate_tokens(system) + estimate_tokens(user) + 2 * TOKENS_PER_MESSAGE + schema_tokens()
    return Prompt(
        messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
        version=prompt_version(),
        estimated_tokens=estimated,
        failure_chars=len(failure),
        trimmed=trimmed,
    )


def describe_cluster(cluster: Any) -> str:
    """'Standard_DS3_v2, 4 workers, 14.3.x-scala2.12' from a new_cluster spec (or a string as given)."""
    if not cluster:
        return "(not given)"
    if isinstance(cluster, str):
        return cluster
    if not isinstance(cluster, dict):
        return "(not given)"
    parts = []
    node = cluster.get("node_type_id") or ("instance pool" if cluster.get("instance_pool_id") else None)
    if node:
        parts.append(str(node))
    if cluster.get("driver_node_type_id") and cluster.get("driver_node_type_id") != cluster.get("node_type_id"):
        parts.append(f"driver {cluster['driver_node_type_id']}")
    if isinstance(cluster.get("autoscale"), dict):
        scale = cluster["autoscale"]
        parts.append(f"autoscale {scale.get('min_workers', '?')}-{scale.get('max_workers', '?')} workers")
    elif "num_workers" in cluster:
        parts.append(f"{cluster['num_workers']} workers")
    if cluster.get("spark_version"):
        parts.append(str(cluster["spark_version"]))
    return ", ".join(parts) or "(not given)"


def fold_frames(text: str) -> str:
    """Long runs of stack frames folded: the first Java frames and the last Python frames of each run stay."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        if _JAVA_FRAME.match(lines[i]):
            j = i
            while j < len(lines) and _JAVA_FRAME.match(lines[j]):
                j += 1
            run = lines[i:j]
            out.extend(run[:FRAMES_KEPT])
            if len(run) > FRAMES_KEPT:
                out.append(f"\t... {len(run) - FRAMES_KEPT} more frames")
            i = j
        elif _PY_FRAME.match(lines[i]):
            frames: list[list[str]] = []
            j = i
            while j < len(lines) and _PY_FRAME.match(lines[j]):
                frame = [lines[j]]
                j += 1
                # the source line under a frame is indented further and is not itself a frame
                while j < len(lines) and lines[j].startswith("    ") and not _PY_FRAME.match(lines[j]):
                    frame.append(lines[j])
                    j += 1
                frames.append(frame)
            if len(frames) > FRAMES_KEPT:
                out.append(f"  ... {len(frames) - FRAMES_KEPT} frames folded")
            for frame in frames[-FRAMES_KEPT:]:
                out.extend(frame)
            i = j
        else:
            out.append(lines[i])
            i += 1
    return "\n".join(out)


def trim_middle(text: str, limit: int) -> str:
    """`text` cut to about `limit` characters: the head (error class, message) and the tail (last Caused by)."""
    if len(text) <= limit:
        return text
    marker = "\n…[{} characters cut]…\n"
    keep = max(0, limit - len(marker) - 8)
    head = keep * 3 // 5
    tail = keep - head
    cut = len(text) - head - tail
    return text[:head] + marker.format(cut) + (text[-tail:] if tail else "")


def _defuse(text: str) -> str:
    # The data cannot close its own delimiter and speak as the prompt.
    return _DELIMITER.sub("[failure_text tag removed]", text)


def _field(value: str, limit: int) -> str:
    value = _defuse(" ".join(value.split()))
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _tasks(tasks: Any) -> str:
    if not tasks:
        return "(not given)"
    if isinstance(tasks, str):
        return tasks
    names = [str(t) for t in tasks]
    shown = ", ".join(names[:MAX_TASKS])
    return shown + (f" and {len(names) - MAX_TASKS} more" if len(names) > MAX_TASKS else "")


def _attempt(context: dict[str, Any]) -> str:
    attempt = context.get("attempt")
    if attempt is None:
        return "(not given)"
    limit = context.get("max_attempts")
    return f"{attempt} of {limit}" if limit else str(attempt)
