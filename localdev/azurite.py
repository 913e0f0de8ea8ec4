"""Start and stop the Azurite storage emulator (npm `azurite`, pinned in package.json) on free loopback ports."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from localdev.ports import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key (public, documented by Microsoft); not a secret.
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@dataclass
class Azurite:
    """A running Azurite; `connection_string` is what AzureWebJobsStorage should hold."""

    blob_port: int
    queue_port: int
    table_port: int
    process: subprocess.Popen
    workdir: str
    _owned_dir: bool = field(default=True, repr=False)

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{self.blob_port}/{ACCOUNT};"
            f"QueueEndpoint=http://127.0.0.1:{self.queue_port}/{ACCOUNT};"
            f"TableEndpoint=http://127.0.0.1:{self.table_port}/{ACCOUNT};"
        )

    def stop(self) -> None:
        """Stop the emulator and remove its data."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self._owned_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def azurite_binary() -> str:
    """Path of the pinned azurite; run `npm ci` (or `make setup`) first."""
    local = ROOT / "node_modules" / ".bin" / "azurite"
    if local.exists():
        return str(local)
    found = shutil.which("azurite")
    if found:
        return found
    raise FileNotFoundError("azurite is not installed: run `make setup` (npm ci installs the pinned version)")


def start_azurite(timeout: float = 30.0) -> Azurite:
    """Start Azurite in memory on three free loopback ports and wait until all three accept connections."""
    blob, queue, table = free_port(), free_port(), free_port()
    workdir = tempfile.mkdtemp(prefix="azurite-")
    args = [
        azurite_binary(), "--silent", "--inMemoryPersistence", "--skipApiVersionCheck", "--loose",
        "--disableTelemetry",
        "--blobHost", "127.0.0.1", "--blobPort", str(blob),
        "--queueHost", "127.0.0.1", "--queuePort", str(queue),
        "--tableHost", "127.0.0.1", "--tablePort", str(table),
    ]
    log = open(os.path.join(workdir, "azurite.log"), "wb")  # noqa: SIM115 - lives as long as the process
    # The process runs in workdir so Azurite's debug and extent files, if any, land there and are removed.
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir)
    azurite = Azurite(blob, queue, table, process, workdir)
    try:
        for port in (blob, queue, table):
            wait_for_port(port, timeout=timeout)
    except TimeoutError:
        azurite.stop()
        raise
    return azurite
