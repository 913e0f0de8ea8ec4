"""A compact excerpt of a failure for emails and the LLM: the error line, the root cause, the lines that
decided, and the first frames of the user's own code. Never the 5 MB log."""

from __future__ import annotations

import re

from shared.classify.signals import Parsed, bound

MAX_CHARS = 2000
_LINE = 300
# Frames of the job's own code: Python files outside the runtime, notebook cells, JVM frames outside the
# platform's packages.
_PY_FRAME = re.compile(r'^\s{0,20}File "?(?P<file>[^",\n]{1,300})"?, line \d{1,7}(?:, in [^\n]{0,200})?', re.M)
_IPY_FRAME = re.compile(r"^\s{0,20}File <command-\d{1,30}>, line \d{1,7}", re.M)
_JVM_FRAME = re.compile(r"^\s{0,20}at (?P<where>[\w$.<>/-]{1,300})\([^)\n]{0,200}\)", re.M)
_RUNTIME_PATHS = ("site-packages", "dist-packages", "/databricks/", "/usr/lib/python", "/lib/python3", "pyspark/",
                  "py4j/", "<frozen", "/local_disk0/.ephemeral_nfs/cluster_libraries")
_PLATFORM_PACKAGES = ("java.", "javax.", "jdk.", "sun.", "scala.", "org.apache.", "com.databricks.", "py4j.",
                      "io.netty.", "com.google.", "com.amazonaws.", "software.amazon.", "com.microsoft.",
                      "org.postgresql.", "com.mysql.", "oracle.", "net.snowflake.", "org.glassfish.",
                      "org.eclipse.", "io.delta.", "com.fasterxml.", "shaded.", "akka.", "kafkashaded.")
_MAX_FRAMES = 3


def build_excerpt(original: str, parsed: Parsed, evidence: tuple[str, ...]) -> str:
    """At most MAX_CHARS: headline, root cause, evidence, user frames (each once, in that order)."""
    parts: list[str] = []
    lines = parsed.text.split("\n", 1)
    if lines and lines[0].strip():
        parts.append(_trim(lines[0]))
    root = parsed.cause_text(parsed.root, limit=700)
    if root:
        parts.append(root)
    parts.extend(evidence)
    frames = user_frames(bound(original))
    if frames:
        parts.append("User code:\n" + "\n".join(frames))
    seen: set[str] = set()
    out: list[str] = []
    size = 0
    for part in parts:
        part = part.strip()
        if not part or part in seen or any(part in earlier for earlier in out):
            continue
        seen.add(part)
        if size + len(part) + 1 > MAX_CHARS:
            room = MAX_CHARS - size - 2
            if room > 40:
                out.append(part[:room] + "…")
            break
        out.append(part)
        size += len(part) + 1
    return "\n".join(out)[:MAX_CHARS]


def user_frames(text: str) -> list[str]:
    """The first few frames that belong to the job's code, not to Python, Spark or the platform."""
    frames: list[tuple[int, str]] = []
    for m in _PY_FRAME.finditer(text):
        if not any(p in m.group("file") for p in _RUNTIME_PATHS):
            frames.append((m.start(), _trim(m.group().strip())))
    for m in _IPY_FRAME.finditer(text):
        frames.append((m.start(), m.group().strip()))
    for m in _JVM_FRAME.finditer(text):
        if not m.group("where").startswith(_PLATFORM_PACKAGES):
            frames.append((m.start(), _trim(m.group().strip())))
    unique = []
    for _, frame in sorted(frames):
        if frame not in unique:
            unique.append(frame)
    return unique[:_MAX_FRAMES]


def _trim(line: str, limit: int = _LINE) -> str:
    line = line.strip()
    return line if len(line) <= limit else line[: limit - 1] + "…"
