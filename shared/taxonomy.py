"""The failure categories and actions every part of the agent speaks in."""

from __future__ import annotations

from enum import Enum


class Category(str, Enum):
    """What kind of failure a run had, by root cause (see ../shared/eval/README.md for the policy)."""

    TIMEOUT = "timeout"
    RESOURCE = "resource"
    PERMISSION = "permission"
    CODE = "code"
    DATA = "data"
    NETWORK = "network"
    INFRASTRUCTURE = "infrastructure"
    CONCURRENCY = "concurrency"
    THROTTLING = "throttling"
    QUOTA = "quota"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


class Action(str, Enum):
    """What the agent does about a failed run."""

    RETRY = "RETRY"
    RETRY_WITH_NEW_PARAMS = "RETRY_WITH_NEW_PARAMS"
    SEND_EMAIL = "SEND_EMAIL"
    ESCALATE = "ESCALATE"
    IGNORE = "IGNORE"


# The first-attempt action for each category; the decision step may still change it (budget, guard rails).
FIRST_ACTION: dict[Category, Action] = {
    Category.TIMEOUT: Action.RETRY,
    Category.NETWORK: Action.RETRY,
    Category.INFRASTRUCTURE: Action.RETRY,
    Category.CONCURRENCY: Action.RETRY,
    Category.THROTTLING: Action.RETRY,
    Category.RESOURCE: Action.RETRY_WITH_NEW_PARAMS,
    Category.PERMISSION: Action.SEND_EMAIL,
    Category.CODE: Action.SEND_EMAIL,
    Category.DATA: Action.SEND_EMAIL,
    Category.QUOTA: Action.SEND_EMAIL,
    Category.UNKNOWN: Action.SEND_EMAIL,
    Category.CANCELLED: Action.IGNORE,
}

# Categories a retry can never fix: retrying them burns clusters (the "harmful" count in `make eval`).
NEVER_RETRY: frozenset[Category] = frozenset(
    {Category.PERMISSION, Category.CODE, Category.DATA, Category.QUOTA}
)
