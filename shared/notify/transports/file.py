"""Write each email as files a person can open: <name>.eml (the full MIME message) and <name>.html.

For local runs and the demo (EMAIL_TRANSPORT=file, EMAIL_FILE_DIR). Writing the same notification again
replaces its files: the name comes from the notification id, not from the time.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from shared.notify.transports.base import EmailTransport, OutgoingEmail, SendResult

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class FileTransport(EmailTransport):
    """Emails as .eml + .html (+ .txt) files in one directory."""

    name = "file"

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def describe(self) -> str:
        return f"file {self.directory.resolve()}"

    def _send(self, email: OutgoingEmail) -> SendResult:
        self.directory.mkdir(parents=True, exist_ok=True)
        stem = self.directory / file_stem(email.id)
        stem.with_suffix(".eml").write_bytes(bytes(email.to_mime()))
        stem.with_suffix(".html").write_text(email.html, encoding="utf-8")
        stem.with_suffix(".txt").write_text(f"Subject: {email.subject}\nTo: {', '.join(email.to)}\n\n{email.text}",
                                            encoding="utf-8")
        return SendResult(self.name, provider_id=str(stem.with_suffix(".eml")), detail=f"written to {stem}.eml/.html")


def file_stem(notification_id: str) -> str:
    """A readable, safe and unique file name for a notification id."""
    digest = hashlib.sha256(notification_id.encode()).hexdigest()[:8]
    return f"{_UNSAFE.sub('_', notification_id).strip('_')[:80]}-{digest}"
