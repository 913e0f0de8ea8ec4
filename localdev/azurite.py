"""Start and stop the Azurite storage emulator (npm `azurite`, pinned in package.json) on free loopback ports."""

from __future__ import annotations

import os
import re
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

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the emulator (killed after `timeout` s) and remove its data unless it lives in a --location."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
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


def start_azurite(timeout: float = 30.0, *, ports: tuple[int, int, int] | None = None,
                  location: Path | None = None) -> Azurite:
    """Start Azurite on loopback and wait until its three ports accept connections.

    Default: in memory, on three free ports. With `ports` (blob, queue, table) it takes those, e.g. the
    emulator's well-known 10000-10002 that UseDevelopmentStorage=true means; with `location` its data persists
    there (as `npx azurite --location .azurite` does) and is kept when it stops.
    """
    blob, queue, table = ports or (free_port(), free_port(), free_port())
    workdir = str(location) if location else tempfile.mkdtemp(prefix="azurite-")
    os.makedirs(workdir, exist_ok=True)
    storage = ["--location", workdir] if location else ["--inMemoryPersistence"]
    args = [
        azurite_binary(), "--silent", *storage, "--skipApiVersionCheck", "--loose", "--disableTelemetry",
        "--blobHost", "127.0.0.1", "--blobPort", str(blob),
        "--queueHost", "127.0.0.1", "--queuePort", str(queue),
        "--tableHost", "127.0.0.1", "--tablePort", str(table),
    ]
    log = open(os.path.join(workdir, "azurite.log"), "wb")  # noqa: SIM115 - lives as long as the process
    # The process runs in workdir so Azurite's debug and extent files, if any, land there and are removed.
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir)
    azurite = Azurite(blob, queue, table, process, workdir, _owned_dir=location is None)
    try:
        for port in (blob, queue, table):
            wait_for_port(port, timeout=timeout)
    except TimeoutError:
        azurite.stop()
        raise
    return azurite


# The storage emulator's well-known ports, which UseDevelopmentStorage=true stands for.
EMULATOR_PORTS = (10000, 10001, 10002)
_ENDPOINT = re.compile(r"(Blob|Queue|Table)Endpoint=https?://(127\.0\.0\.1|localhost)(?::(\d+))?", re.IGNORECASE)


def emulator_ports(connection_string: str | None) -> tuple[int, int, int] | None:
    """(blob, queue, table) ports when the connection string means a local emulator on loopback, else None."""
    if not connection_string:
        return None
    if "usedevelopmentstorage=true" in connection_string.replace(" ", "").lower():
        return EMULATOR_PORTS
    found = {kind.lower(): int(port or 80) for kind, _, port in _ENDPOINT.findall(connection_string)}
    if "queue" not in found:
        return None
    return (found.get("blob", EMULATOR_PORTS[0]), found["queue"], found.get("table", EMULATOR_PORTS[2]))
