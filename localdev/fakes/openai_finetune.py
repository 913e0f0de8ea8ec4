"""The files and fine-tuning routes of the Azure OpenAI fake (data plane, api-version 2024-10-21):

  POST /openai/files                       multipart: purpose=fine-tune, file=<jsonl> → file object, "pending"
  GET  /openai/files/<id>                  → "processed" (or "error" when the JSONL is not valid chat data)
  POST /openai/fine_tuning/jobs            {model, training_file, validation_file?, suffix?, seed?} → job
  GET  /openai/fine_tuning/jobs/<id>       → the job; each read moves it on: validating_files → queued →
                                             running → succeeded (with fine_tuned_model)
  GET  /openai/fine_tuning/jobs/<id>/events

As the service does, a job refuses a file that is not processed yet or failed validation (400), a model that
cannot be fine-tuned (400), and an unknown id (404). Files are validated with the project's own format check
so the fake is as strict as the documented format.
"""

from __future__ import annotations

import itertools
import json
import threading
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from shared.finetune.dataset import check_chat_jsonl

FINE_TUNABLE = ("gpt-4o-mini-2024-07-18", "gpt-4o-2024-08-06", "gpt-4.1-mini-2025-04-14", "gpt-4.1-2025-04-14")
JOB_STEPS = ("validating_files", "queued", "running", "succeeded")
_ids = itertools.count(1)


class FineTuning:
    """State of the fake's files and jobs."""

    def __init__(self) -> None:
        self.files: dict[str, dict[str, Any]] = {}
        self.contents: dict[str, bytes] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.events: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def handles(self, path: str) -> bool:
        return path.startswith(("/openai/files", "/openai/fine_tuning/"))

    def handle(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, Any]]:
        parts = path.strip("/").split("/")
        with self._lock:
            if method == "POST" and parts == ["openai", "files"]:
                return self._upload(headers, raw)
            if method == "GET" and parts[:2] == ["openai", "files"] and len(parts) == 3:
                return self._file(parts[2])
            if method == "POST" and parts == ["openai", "fine_tuning", "jobs"]:
                return self._create_job(raw)
            if method == "GET" and parts[:3] == ["openai", "fine_tuning", "jobs"] and len(parts) == 4:
                return self._job(parts[3])
            if method == "GET" and parts[:3] == ["openai", "fine_tuning", "jobs"] and parts[4:] == ["events"]:
                return self._events(parts[3])
        return 404, _error("404", "Resource not found")

    def _upload(self, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, Any]]:
        content_type = headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            return 400, _error("invalidPayload", "The request must be multipart/form-data.")
        message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
        fields = {part.get_param("name", header="content-disposition"): part for part in message.iter_parts()}
        purpose = fields.get("purpose").get_content().strip() if "purpose" in fields else None
        upload = fields.get("file")
        if purpose != "fine-tune" or upload is None:
            return 400, _error("invalidPayload", "'purpose' must be 'fine-tune' and 'file' is required.")
        data = upload.get_payload(decode=True) or b""
        file_id = f"file-{next(_ids):08x}"
        self.contents[file_id] = data
        self.files[file_id] = {"id": file_id, "object": "file", "bytes": len(data), "created_at": 1_765_000_000,
                               "filename": upload.get_filename() or "upload.jsonl", "purpose": "fine-tune",
                               "status": "pending", "status_details": None}
        return 201, dict(self.files[file_id])

    def _file(self, file_id: str) -> tuple[int, dict[str, Any]]:
        found = self.files.get(file_id)
        if found is None:
            return 404, _error("fileNotFound", f"File {file_id} was not found.")
        if found["status"] == "pending":  # processed on the first look, as a small file is in the service
            problems = check_chat_jsonl(self.contents[file_id].decode("utf-8", errors="replace"))
            found["status"] = "error" if problems else "processed"
            found["status_details"] = "; ".join(problems[:3]) or None
        return 200, dict(found)

    def _create_job(self, raw: bytes) -> tuple[int, dict[str, Any]]:
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            return 400, _error("invalidPayload", "The body is not JSON.")
        if body.get("model") not in FINE_TUNABLE:
            return 400, _error("invalidPayload", f"The model '{body.get('model')}' is not supported for fine-tuning.")
        for key in ("training_file", "validation_file"):
            file_id = body.get(key)
            if key == "training_file" and not file_id:
                return 400, _error("invalidPayload", "'training_file' is required.")
            if file_id and self.files.get(file_id, {}).get("status") != "processed":
                return 400, _error("invalidPayload", f"The file {file_id} is not processed or failed validation.")
        job_id = f"ftjob-{next(_ids):08x}"
        self.jobs[job_id] = {
            "id": job_id, "object": "fine_tuning.job", "created_at": 1_765_000_100, "finished_at": None,
            "model": body["model"], "fine_tuned_model": None, "organization_id": "org-fake", "result_files": [],
            "status": "pending", "validation_file": body.get("validation_file"), "training_file": body["training_file"],
            "hyperparameters": {"n_epochs": "auto", "batch_size": "auto", "learning_rate_multiplier": "auto"},
            "trained_tokens": None, "error": None, "seed": body.get("seed", 0), "suffix": body.get("suffix"),
        }
        self.events[job_id] = [_event(job_id, "Job enqueued")]
        return 201, dict(self.jobs[job_id])

    def _job(self, job_id: str) -> tuple[int, dict[str, Any]]:
        job = self.jobs.get(job_id)
        if job is None:
            return 404, _error("notFound", f"Fine-tuning job {job_id} was not found.")
        if job["status"] != "succeeded":
            step = JOB_STEPS[(JOB_STEPS.index(job["status"]) + 1) if job["status"] in JOB_STEPS else 0]
            job["status"] = step
            self.events[job_id].append(_event(job_id, f"Job is {step.replace('_', ' ')}"))
            if step == "succeeded":
                suffix = f"-{job['suffix']}" if job.get("suffix") else ""
                job.update(fine_tuned_model=f"{job['model']}.ft-{job_id[6:]}{suffix}", finished_at=1_765_003_600,
                           trained_tokens=len(self.contents.get(job["training_file"], b"")) // 4)
        return 200, dict(job)

    def _events(self, job_id: str) -> tuple[int, dict[str, Any]]:
        if job_id not in self.jobs:
            return 404, _error("notFound", f"Fine-tuning job {job_id} was not found.")
        return 200, {"object": "list", "data": list(reversed(self.events[job_id])), "has_more": False}


def _event(job_id: str, message: str) -> dict[str, Any]:
    return {"id": f"ftevent-{next(_ids):08x}", "object": "fine_tuning.job.event", "created_at": 1_765_000_200,
            "level": "info", "message": message, "type": "message"}


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}
