"""The README's Azurite line works as written: its flags, on free ports, serve the pinned storage SDKs (without
--skipApiVersionCheck the SDK's API version is refused) and keep Azurite from calling out (--disableTelemetry)."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

from azure.data.tables import TableServiceClient
from azure.storage.queue import QueueServiceClient

from localdev.azurite import ACCOUNT, ACCOUNT_KEY, azurite_binary
from localdev.ports import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]


def readme_azurite_arguments() -> list[str]:
    line = next(line for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
                if line.startswith("npx azurite "))
    return shlex.split(re.sub(r"\s*&.*$", "", line))[2:]


def test_the_readme_line_has_the_flags_the_sdks_and_a_quiet_machine_need():
    arguments = readme_azurite_arguments()
    assert {"--skipApiVersionCheck", "--disableTelemetry", "--location"} <= set(arguments)


def test_the_readme_line_serves_the_pinned_sdks(tmp_path):
    arguments = readme_azurite_arguments()
    at = arguments.index("--location")
    arguments[at + 1] = str(tmp_path / "azurite")  # the README's .azurite, in a scratch folder
    blob, queue, table = free_port(), free_port(), free_port()
    ports = ["--blobPort", str(blob), "--queuePort", str(queue), "--tablePort", str(table)]  # not 10000-10002
    process = subprocess.Popen([azurite_binary(), *arguments, *ports], cwd=tmp_path, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        for port in (blob, queue, table):
            wait_for_port(port, timeout=30)
        connection = (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
                      f"QueueEndpoint=http://127.0.0.1:{queue}/{ACCOUNT};TableEndpoint=http://127.0.0.1:{table}/{ACCOUNT};")
        queues = QueueServiceClient.from_connection_string(connection).get_queue_client("readme")
        queues.create_queue()
        queues.send_message("hello")
        assert [m.content for m in queues.receive_messages()] == ["hello"]
        TableServiceClient.from_connection_string(connection).create_table("readme")
    finally:
        process.terminate()
        process.wait(timeout=10)
