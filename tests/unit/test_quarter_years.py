"""Quarters outside the years we keep are refused before anything is stored."""

from __future__ import annotations

import pytest

from soh_es.errors import ValidationError
from soh_es.quarters import Quarter


@pytest.mark.parametrize(
    "text", ["0000-Q1", "0999-Q4", "1899-Q4", "3000-Q1", "9999-Q4"]
)
def test_a_quarter_outside_1900_to_2999_is_refused_naming_the_value(
    text: str,
) -> None:
    with pytest.raises(ValidationError) as raised:
        Quarter.parse(text, field="values.quarter")
    assert raised.value.field == "values.quarter"
    assert repr(text) in raised.value.message


@pytest.mark.parametrize("text", ["1900-Q1", "2026-Q2", "2999-Q4"])
def test_a_quarter_inside_the_years_writes_back_as_it_was_read(text: str) -> None:
    assert str(Quarter.parse(text)) == text
