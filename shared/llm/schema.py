"""The LLM's answer as a typed object: the JSON schema sent as structured output, and the validation of the reply.

Every field is required (structured output's strict mode); "none" is null. Nothing here is trusted yet:
guard.py decides what of it may change the decision. Validators clean what must never pass even into a
record (control characters, unbounded text); they do not appear in the schema, which keeps it small (it
counts as prompt tokens on every call).
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from shared.taxonomy import Category

MAX_TEXT_CHARS = 600
MAX_CONF_ENTRIES = 8

CategoryName = Literal[tuple(c.value for c in Category)]  # type: ignore[valid-type]
Severity = Literal["low", "medium", "high", "critical"]

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _drop_titles(schema: dict[str, Any], cls: type | None = None) -> None:
    # pydantic titles repeat the field names, and the docstrings are for people: tokens paid on every call.
    schema.pop("title", None)
    schema.pop("description", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)


def clean_text(value: str, limit: int = MAX_TEXT_CHARS) -> str:
    """One bounded paragraph: no control characters, runs of blanks collapsed."""
    value = _CONTROL.sub(" ", value)
    value = re.sub(r"[ \t]+", " ", value)
    value = re.sub(r"\n{3,}", "\n\n", value).strip()
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"


class SparkConfEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_drop_titles)

    key: str
    value: str


class SuggestedParameters(BaseModel):
    """Cluster changes for a rerun. Clamped by guard.clamp_parameters before anything uses them."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_drop_titles)

    node_type_id: str | None
    num_workers: int | None
    autoscale_max_workers: int | None
    spark_conf: list[SparkConfEntry]

    @field_validator("spark_conf")
    @classmethod
    def _few_entries(cls, value: list[SparkConfEntry]) -> list[SparkConfEntry]:
        return value[:MAX_CONF_ENTRIES]


class FailureAnalysis(BaseModel):
    """The structured answer. The class name is the json_schema name the service sees."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_drop_titles)

    # No action: the model names the category and the agent derives the action from the category table.
    category: CategoryName
    # The guidance for each field is in the system prompt; descriptions here would be paid for twice.
    confidence: float
    root_cause: str
    suggested_fix: str
    severity: Severity
    suggested_parameters: SuggestedParameters | None

    @model_validator(mode="before")
    @classmethod
    def _no_action(cls, data: Any) -> Any:
        # Answers to the old schema, or a model that adds an action anyway: the action is never the model's.
        if isinstance(data, dict) and "action" in data:
            data = {k: v for k, v in data.items() if k != "action"}
        return data

    @field_validator("confidence")
    @classmethod
    def _unit_interval(cls, value: float) -> float:
        if math.isnan(value):
            return 0.0
        return min(1.0, max(0.0, value))

    @field_validator("root_cause", "suggested_fix")
    @classmethod
    def _bounded(cls, value: str) -> str:
        return clean_text(value)

    @property
    def category_enum(self) -> Category:
        return Category(self.category)

    # --- boundary: the cache ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FailureAnalysis":
        """Raises pydantic.ValidationError naming the bad field."""
        return cls.model_validate(data)
