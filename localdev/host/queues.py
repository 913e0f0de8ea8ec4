"""Queue triggers against real Azure Storage queues (Azurite): the storage calls, and one listener per
queue-triggered function with the host.json semantics the harness honours (encoding, dequeue count, poison
queue, visibility timeout after a failure, batchSize / newBatchThreshold)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import math
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ContextManager

from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.functions.queue import QueueMessage as TriggerMessage
from azure.storage.queue import LinearRetry, QueueClient, QueueServiceClient
from azure.storage.queue import QueueMessage as StoredMessage

from localdev.host.bindings import FunctionSpec
from localdev.host.settings import QueueOptions

logger = logging.getLogger(__name__)

POISON_SUFFIX = "-poison"
MIN_POLLING_INTERVAL = 0.05
# How long a received message stays invisible while the function runs. As the host (the WebJobs SDK's queue
# listener: 10 minutes), the lease is renewed when it is halfway to expiring, for as long as the invocation runs.
DEFAULT_LEASE_SECONDS = 600
# A failed renewal is tried again sooner, never more often than this (the SDK speeds up to one minute at most).
MIN_RENEWAL_INTERVAL = 0.5
# The SDK's default retry waits 15 s, 45 s ... before a storage error surfaces; a harness says so within seconds.
HARNESS_RETRY = LinearRetry(backoff=1, retry_total=2, random_jitter_range=0)


class StorageQueues:
    """The queues of one storage account, read and written with the host's message encoding."""

    def __init__(self, connection_string: str, encoding: str = "base64") -> None:
        self._service = QueueServiceClient.from_connection_string(connection_string, retry_policy=HARNESS_RETRY,
                                                                  connection_timeout=5)
        self._encoding = encoding
        self._clients: dict[str, QueueClient] = {}
        self._created: set[str] = set()
        self._lock = threading.Lock()

    def encode(self, body: bytes) -> str:
        return base64.b64encode(body).decode("ascii") if self._encoding == "base64" else body.decode("utf-8")

    def decode(self, text: str) -> bytes:
        """The body of a stored message; ValueError when the encoding is base64 and the text is not."""
        if self._encoding != "base64":
            return text.encode("utf-8")
        try:
            return base64.b64decode(text, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"message is not valid base64: {exc}") from exc

    def client(self, queue: str) -> QueueClient:
        with self._lock:
            if queue not in self._clients:
                self._clients[queue] = self._service.get_queue_client(queue)
            return self._clients[queue]

    def ensure(self, queue: str) -> None:
        """Create the queue unless this object already saw it exist (the host creates output queues too)."""
        if queue in self._created:
            return
        with contextlib.suppress(ResourceExistsError):
            self.client(queue).create_queue()
        self._created.add(queue)

    def send(self, queue: str, body: bytes) -> None:
        self.ensure(queue)
        self.client(queue).send_message(self.encode(body))

    def receive(self, queue: str, count: int, lease_seconds: int) -> list[StoredMessage]:
        try:
            return list(self.client(queue).receive_messages(
                messages_per_page=count, max_messages=count, visibility_timeout=math.ceil(lease_seconds)))
        except ResourceNotFoundError:
            return []  # like the host: a trigger queue that does not exist yet is an empty queue

    def delete(self, queue: str, message: StoredMessage) -> None:
        self.client(queue).delete_message(message.id, message.pop_receipt)

    def renew(self, queue: str, message: StoredMessage, lease_seconds: float) -> str:
        """Keep a leased message invisible `lease_seconds` longer; returns its new pop receipt."""
        updated = self.client(queue).update_message(message.id, message.pop_receipt,
                                                    visibility_timeout=math.ceil(lease_seconds))
        return updated.pop_receipt

    def release(self, queue: str, message: StoredMessage, after_seconds: float) -> None:
        """Make a leased message visible again after `after_seconds`."""
        self.client(queue).update_message(message.id, message.pop_receipt,
                                          visibility_timeout=math.ceil(after_seconds))

    def move_to_poison(self, queue: str, message: StoredMessage) -> str:
        """Copy the message's stored text unchanged to `<queue>-poison`, then delete it; returns the poison queue."""
        poison = queue + POISON_SUFFIX
        self.ensure(poison)
        self.client(poison).send_message(message.content)
        self.delete(queue, message)
        return poison

    def count(self, queue: str) -> int:
        """Messages in the queue, visible or not (0 when the queue does not exist)."""
        try:
            return self.client(queue).get_queue_properties().approximate_message_count or 0
        except ResourceNotFoundError:
            return 0


InvokeQueueFunction = Callable[[FunctionSpec, TriggerMessage], bool]


class LeaseRenewal:
    """While an invocation runs, keeps its message invisible as the host does: the visibility is renewed when it
    is halfway to expiring, and the new pop receipt replaces the old one on the message (for the delete after).
    A renewal refused because the lease was lost (404, pop receipt mismatch) stops renewing; another storage
    error is tried again sooner."""

    def __init__(self, queues: StorageQueues, queue: str, message: StoredMessage, lease_seconds: float) -> None:
        self._queues, self._queue, self._message, self._lease = queues, queue, message, lease_seconds
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"lease-{message.id}", daemon=True)
        self.renewals = 0

    def __enter__(self) -> LeaseRenewal:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self._thread.join()

    def _renew(self) -> None:
        interval = self._lease / 2
        while not self._done.wait(interval):
            try:
                self._message.pop_receipt = self._queues.renew(self._queue, self._message, self._lease)
                self.renewals += 1
                interval = self._lease / 2
            except HttpResponseError as exc:
                if exc.status_code in (400, 404):
                    logger.warning("message %s from queue %s: lease lost, no longer renewed: %s",
                                   self._message.id, self._queue, exc)
                    return
                interval = max(MIN_RENEWAL_INTERVAL, interval / 2)
            except AzureError as exc:
                logger.warning("renewing the lease of message %s failed, trying again: %s", self._message.id, exc)
                interval = max(MIN_RENEWAL_INTERVAL, interval / 2)


class QueueListener:
    """Polls the trigger queue of one function and runs it on a small thread pool.

    Up to batchSize messages are fetched at a time, and a new batch once no more than newBatchThreshold are
    still running. A message stays invisible while its invocation runs (LeaseRenewal). Success deletes it. A
    failure makes it visible again after visibilityTimeout, or, once its dequeue count reaches maxDequeueCount,
    moves its original text to `<queue>-poison`.
    """

    def __init__(self, spec: FunctionSpec, queues: StorageQueues, options: QueueOptions,
                 invoke: InvokeQueueFunction, activity: Callable[[], ContextManager[None]],
                 lease_seconds: float = DEFAULT_LEASE_SECONDS) -> None:
        assert spec.queue_name is not None
        self.spec = spec
        self.queue = spec.queue_name
        self._queues = queues
        self._options = options
        self._invoke = invoke
        self._activity = activity
        self._lease_seconds = lease_seconds
        self._pool = ThreadPoolExecutor(max_workers=options.batch_size + options.new_batch_threshold,
                                        thread_name_prefix=f"queue-{spec.name}")
        self._busy = 0
        self._slots = threading.Condition()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._poll, name=f"poll-{spec.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Poll now instead of after the current back-off (a message was just written to this queue)."""
        self._wake.set()

    def stop(self) -> None:
        """Stop polling; invocations already running finish, fetched messages not yet started are released."""
        self._stopping.set()
        self._wake.set()
        with self._slots:
            self._slots.notify_all()
        if self._thread.is_alive():
            self._thread.join()
        self._pool.shutdown(wait=True)

    def _poll(self) -> None:
        delay = MIN_POLLING_INTERVAL
        while not self._stopping.is_set():
            with self._slots:
                while self._busy > self._options.new_batch_threshold and not self._stopping.is_set():
                    self._slots.wait(0.5)
            if self._stopping.is_set():
                return
            self._wake.clear()
            try:
                messages = self._queues.receive(self.queue, self._options.batch_size, self._lease_seconds)
            except AzureError as exc:
                logger.warning("polling queue %s failed: %s", self.queue, exc)
                messages = []
            for message in messages:
                with self._slots:
                    self._busy += 1
                self._pool.submit(self._process, message)
            if messages:
                delay = MIN_POLLING_INTERVAL
            elif self._wake.wait(delay):
                delay = MIN_POLLING_INTERVAL
            else:
                delay = min(delay * 2, self._options.max_polling_interval)

    def _process(self, message: StoredMessage) -> None:
        try:
            with self._activity():
                if self._stopping.is_set():
                    self._queues.release(self.queue, message, 0)
                else:
                    self._handle(message)
        except Exception:  # a storage error after the invocation: the lease expires and the message comes back
            logger.exception("handling message %s from queue %s failed", message.id, self.queue)
        finally:
            with self._slots:
                self._busy -= 1
                self._slots.notify_all()

    def _handle(self, message: StoredMessage) -> None:
        limit = self._options.max_dequeue_count
        if message.dequeue_count > limit:  # its lease expired while a run was still going
            self._poison(message, f"dequeue count {message.dequeue_count} is over maxDequeueCount {limit}")
            return
        try:
            body = self._queues.decode(message.content)
        except ValueError as exc:
            self._poison(message, str(exc))
            return
        trigger = TriggerMessage(
            id=message.id, body=body, dequeue_count=message.dequeue_count, pop_receipt=message.pop_receipt,
            insertion_time=message.inserted_on, expiration_time=message.expires_on,
            time_next_visible=message.next_visible_on)
        with LeaseRenewal(self._queues, self.queue, message, self._lease_seconds):
            succeeded = self._invoke(self.spec, trigger)
        if succeeded:
            self._complete(message)
        elif message.dequeue_count >= limit:
            self._poison(message, f"failed {message.dequeue_count} times (maxDequeueCount {limit})")
        else:
            self._queues.release(self.queue, message, self._options.visibility_timeout)
            if self._options.visibility_timeout == 0:
                self.wake()

    def _complete(self, message: StoredMessage) -> None:
        try:
            self._queues.delete(self.queue, message)
        except HttpResponseError as exc:  # 404 or 400 pop receipt mismatch: the lease was lost
            logger.warning("message %s from queue %s was processed but could not be deleted: %s",
                           message.id, self.queue, exc)

    def _poison(self, message: StoredMessage, reason: str) -> None:
        poison = self._queues.move_to_poison(self.queue, message)
        logger.warning("message %s moved from queue %s to %s: %s", message.id, self.queue, poison, reason)
