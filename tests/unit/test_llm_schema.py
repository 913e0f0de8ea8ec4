"""The structured answer: what the schema promises the service, and what the validation lets through."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from shared.llm.schema import FailureAnalysis
from shared.taxonomy import Category
from tests.fixtures.openai import ANSWER_RESOURCE


def test_a_valid_answer_parses():
    answer = FailureAnalysis.model_validate_json(json.dumps(ANSWER_RESOURCE))
    assert answer.category_enum is Category.RESOURCE
    assert answer.suggested_parameters.spark_conf[0].key == "spark.sql.shuffle.partitions"


def test_the_categories_are_the_taxonomys_and_no_action_is_asked_for():
    schema = FailureAnalysis.model_json_schema()
    assert schema["properties"]["category"]["enum"] == [c.value for c in Category]
    assert "action" not in schema["properties"] and "action" not in schema["required"]


@pytest.mark.parametrize("change", [{"category": "banana"}, {"severity": "apocalyptic"},
                                    {"extra": "field"}, {"confidence": "very"}])
def test_an_answer_outside_the_schema_is_rejected(change):
    with pytest.raises(ValidationError):
        FailureAnalysis.model_validate({**ANSWER_RESOURCE, **change})


def test_a_missing_field_is_rejected():
    data = dict(ANSWER_RESOURCE)
    del data["root_cause"]
    with pytest.raises(ValidationError):
        FailureAnalysis.model_validate(data)


def test_confidence_is_clamped_to_the_unit_interval():
    assert FailureAnalysis.model_validate({**ANSWER_RESOURCE, "confidence": 7}).confidence == 1.0
    assert FailureAnalysis.model_validate({**ANSWER_RESOURCE, "confidence": -1}).confidence == 0.0


def test_text_is_bounded_and_free_of_control_characters():
    answer = FailureAnalysis.model_validate({**ANSWER_RESOURCE, "root_cause": "a\x1b[31mb " + "c" * 5000})
    assert "\x1b" not in answer.root_cause and len(answer.root_cause) <= 600


def test_the_schema_is_accepted_by_strict_structured_output():
    from openai.lib._pydantic import to_strict_json_schema

    strict = to_strict_json_schema(FailureAnalysis)
    assert strict["additionalProperties"] is False
    assert set(strict["required"]) == set(strict["properties"])
    assert "title" not in json.dumps(strict["properties"]), "titles cost tokens on every call"


def test_the_cache_form_round_trips():
    answer = FailureAnalysis.model_validate(ANSWER_RESOURCE)
    assert FailureAnalysis.from_dict(json.loads(json.dumps(answer.to_dict()))) == answer
