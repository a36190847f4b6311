"""The plugins' output shaped as Volatility's own plugins shape theirs: short rows, typed columns
with hexadecimal addresses, one name style, and the long evidence only behind ``--evidence``
(a `callstacks.detect -r pretty` row was 828 characters wide, its JSON held JSON texts and its
addresses were decimal)."""

from __future__ import annotations

import re

import pytest

from .conftest import vol_json, vol_text

COLUMN_NAME = re.compile(r"^[A-Z][A-Za-z]*(\([A-Z]\))?$")  # PID, Process, Offset(V), CallVerified


@pytest.fixture(scope="module")
def image(scenario_image):
    return scenario_image("dirty_vanity_fork")


def table_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.startswith("Volatility 3 Framework")]


def test_detect_rows_are_short_and_the_evidence_is_asked_for(image):
    pretty = table_lines(vol_text(image, "pretty", "callstacks.detect"))
    assert "Evidence" not in pretty[0] and max(map(len, pretty)) < 200, pretty
    evidence = table_lines(vol_text(image, "pretty", "callstacks.detect", "--evidence"))
    assert "Evidence" in evidence[0] and max(map(len, evidence)) > 400  # the objects are long: hence the option


@pytest.mark.parametrize("plugin", ["callstacks.detect", "callstacks.events", "callstacks.stacks"])
def test_column_names_are_in_volatilitys_style(image, plugin):
    header = table_lines(vol_text(image, "quick", plugin, "--pid", "6092"))[0].split("\t")
    assert all(COLUMN_NAME.match(name) for name in header), header


def test_addresses_are_hexadecimal_and_json_holds_no_json_texts(image):
    quick = table_lines(vol_text(image, "quick", "callstacks.detect"))
    column = quick[0].split("\t").index("Offset(V)")
    offsets = [line.split("\t")[column] for line in quick[1:]]
    assert offsets and all(re.fullmatch(r"0x[0-9a-f]+", o) for o in offsets), offsets
    for row in vol_json(image, "callstacks.detect"):
        texts = {name: value for name, value in row.items() if isinstance(value, str) and value.startswith(("[", "{"))}
        assert not texts, texts
