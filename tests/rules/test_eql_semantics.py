"""One test per row of docs/eql-semantics.md: where EQL engines differ, what we do."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from .helpers import event, where

DOC = Path(__file__).resolve().parents[2] / "docs" / "eql-semantics.md"

CMD = event(process__name="CMD.exe", process__pid=4242, process__args=["cmd.exe", "/c", "whoami"],
            tags=[], nums=[3, 4242])


def test_question_mark_is_one_character_in_colon_and_like():
    assert where('process.name : "c?d.exe"', CMD) and where('process.name like "C?D.exe"', CMD)
    assert not where('process.name : "c?.exe"', CMD) and not where('process.name like "C??D.exe"', CMD)
    assert where('process.name : "cmd*.exe"', CMD)  # * matches the empty run


def test_equality_never_expands_wildcards():
    assert not where('process.name == "CMD*"', CMD) and not where('process.name in ("C?D.exe")', CMD)
    assert where('process.name != "CMD*"', CMD)
    assert where('x == "a*"', event(x="a*"))


def test_equality_and_in_are_case_sensitive():
    assert where('process.name == "CMD.exe"', CMD) and not where('process.name == "cmd.exe"', CMD)
    assert where('process.name != "cmd.exe"', CMD)
    assert not where('process.name in ("cmd.exe")', CMD) and where('process.name not in ("cmd.exe")', CMD)


def test_tilde_forms_and_colon_ignore_case():
    for condition in ('process.name : "cmd.EXE"', 'process.name in~ ("cmd.exe")', 'process.name like~ "cmd.*"',
                      'process.name regex~ "cmd\\\\.exe"', 'process.name : ("x", "CMD.EXE")'):
        assert where(condition, CMD), condition
    assert not where('process.name not in~ ("cmd.exe")', CMD)


def test_like_and_regex_are_case_sensitive():
    assert not where('process.name like "cmd.*"', CMD) and where('process.name like "CMD.*"', CMD)
    assert not where('process.name regex "cmd.*"', CMD) and where('process.name regex "CMD.*"', CMD)


def test_string_functions_are_case_sensitive_unless_tilde():
    assert not where('startswith(process.name, "cmd")', CMD) and where('startswith~(process.name, "cmd")', CMD)
    assert not where('endswith(process.name, ".EXE")', CMD) and where('endswith~(process.name, ".EXE")', CMD)
    assert not where('stringcontains(process.name, "md.E")', CMD) and where('stringcontains~(process.name, "md.E")', CMD)


def test_regex_matches_the_whole_string():
    assert not where('process.name regex "CMD"', CMD) and where('process.name regex "CMD.*"', CMD)
    assert where('x regex "a.b"', event(x="a\nb"))


def test_multi_valued_fields_hold_for_any_element():
    assert where('process.args : "/C"', CMD) and where('process.args == "whoami"', CMD)
    assert not where('process.args != "/c"', CMD)  # an element is equal
    assert where('process.args != "/k"', CMD)
    assert not where('process.args not in ("/c", "x")', CMD) and where('process.args not in ("/k")', CMD)
    assert where("nums > 4000", CMD)


def test_missing_field_compares_false():
    for condition in ('missing == "x"', 'missing != "x"', 'missing : "*"', 'missing in ("x")', "missing < 1",
                      'missing like "*"', 'missing regex ".*"', 'startswith(missing, "")'):
        assert not where(condition, CMD), condition
    assert where("missing == null", CMD) and not where("missing != null", CMD)


def test_not_of_a_missing_field_is_true():
    assert where('not missing : "x"', CMD)
    assert where("not process.code_signature.trusted == true", CMD)
    assert not where('not process.name : "cmd.exe"', CMD)


def test_empty_array_is_null():
    assert where("tags == null", CMD) and not where("tags != null", CMD)
    assert not where('tags != "x"', CMD) and not where('tags : "*"', CMD)
    assert where('not tags : "x"', CMD)


def test_text_matching_reads_numbers_as_text_but_equality_keeps_types():
    assert where('process.pid : "42*"', CMD) and where('process.pid like "4?42"', CMD)
    assert where('process.pid regex "[0-9]+"', CMD) and where('startswith(process.pid, "42")', CMD)
    assert not where('process.pid == "4242"', CMD) and where("process.pid == 4242", CMD)
    assert not where("flag == 1", event(flag=True)) and where('flag : "true"', event(flag=True))


def test_endgame_string_forms_are_accepted():
    assert where("process.name == 'CMD.exe'", CMD) and where('x == ?"a\\b"', event(x="a\\b"))


def test_raw_string_may_end_in_its_own_quotes():
    assert where('x == """a "b""""', event(x='a "b"')) and where('x == """a ""b"""""', event(x='a ""b""'))


def test_every_row_of_the_document_names_a_test_here():
    named = re.findall(r"\| `(test_[a-z_]+)` \|", DOC.read_text(encoding="utf-8"))
    module = sys.modules[__name__]
    assert len(named) == 14
    assert all(callable(getattr(module, name, None)) for name in named), named
