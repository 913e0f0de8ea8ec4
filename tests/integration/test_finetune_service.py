"""`finetune submit` / `status` with the real `openai` client against the Azure OpenAI fake's fine-tuning routes."""

from __future__ import annotations

import json

import pytest
from openai import AzureOpenAI

from localdev.fakes.openai_server import FAKE_API_KEY
from shared.finetune.service import FineTuneError, status, submit

LINE = {"messages": [{"role": "system", "content": "Classify."}, {"role": "user", "content": "Read timed out"},
                     {"role": "assistant", "content": '{"category": "network"}'}]}


@pytest.fixture
def client(openai_fake):
    return AzureOpenAI(azure_endpoint=openai_fake.endpoint, api_key=FAKE_API_KEY, api_version="2024-10-21",
                       max_retries=0)


def _write(path, lines):
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_submit_uploads_both_files_and_creates_the_job_then_status_follows_it_to_the_model(client, openai_fake,
                                                                                          tmp_path):
    train = _write(tmp_path / "train.jsonl", [LINE] * 12)
    validation = _write(tmp_path / "validation.jsonl", [LINE] * 3)
    done = submit(client, train, validation, model="gpt-4o-mini-2024-07-18", suffix="agent", sleep=lambda s: None)
    assert done.job_id.startswith("ftjob-") and done.validation_file
    job = openai_fake.fine_tuning.jobs[done.job_id]
    assert (job["training_file"], job["validation_file"], job["suffix"]) == (done.training_file,
                                                                          done.validation_file, "agent")
    seen = [status(client, done.job_id)["status"] for _ in range(4)]
    assert seen[-1] == "succeeded"
    final = status(client, done.job_id)
    assert final["fine_tuned_model"].startswith("gpt-4o-mini-2024-07-18.ft-") and final["events"]


def test_a_file_the_service_rejects_is_reported_and_no_job_is_created(client, openai_fake, tmp_path):
    bad = tmp_path / "train.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "no answer"}]}\n')
    with pytest.raises(FineTuneError, match="rejected the file"):
        submit(client, bad, None, model="gpt-4o-mini-2024-07-18", sleep=lambda s: None)
    assert openai_fake.fine_tuning.jobs == {}


def test_a_model_that_cannot_be_fine_tuned_is_refused_clearly(client, tmp_path):
    train = _write(tmp_path / "train.jsonl", [LINE] * 12)
    with pytest.raises(FineTuneError, match="not supported for fine-tuning"):
        submit(client, train, None, model="o3-mini", sleep=lambda s: None)


def test_status_of_an_unknown_job_is_a_clear_error(client):
    with pytest.raises(FineTuneError, match="was not found"):
        status(client, "ftjob-missing")
