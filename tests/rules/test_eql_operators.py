"""Each comparison operator of the dialect, on its own, with its case rule."""

import pytest

from callstack_forensics.eql import EqlSyntaxError, compile_query

from .helpers import event, holds, where

CMD = event(process__name="cmd.exe", process__pid=4242, process__executable="C:\\Windows\\System32\\cmd.exe")


@pytest.mark.parametrize("category", ["process", "library", "file", "registry", "network", "api", "dns"])
def test_event_class_selects_its_category(category):
    ev = event(category, x=1)
    assert holds(f"{category} where x == 1", ev)
    other = "file" if category != "file" else "process"
    assert not holds(f"{other} where x == 1", ev)


def test_any_matches_every_category_and_none():
    assert holds("any where x == 1", event("registry", x=1))
    assert holds("any where x == 1", event(None, x=1))
    assert not holds("process where x == 1", event(None, x=1))


def test_category_may_be_a_list():
    ev = event(["process", "api"], x=1)
    assert holds("api where x == 1", ev)
    assert holds("process where x == 1", ev)
    assert not holds("file where x == 1", ev)


def test_quoted_event_class():
    assert holds('"my-category" where x == 1', event("my-category", x=1))


def test_equals_is_case_sensitive():
    assert where('process.name == "cmd.exe"', CMD)
    assert not where('process.name == "CMD.EXE"', CMD)


def test_equals_treats_star_literally():
    assert not where('process.name == "cmd*"', CMD)
    assert where('x == "cmd*"', event(x="cmd*"))


def test_not_equals_needs_a_present_different_value():
    assert where('process.name != "notepad.exe"', CMD)
    assert not where('process.name != "cmd.exe"', CMD)
    assert not where('missing.field != "cmd.exe"', CMD)


@pytest.mark.parametrize(
    "condition,expected",
    [("process.pid < 5000", True), ("process.pid < 4242", False), ("process.pid <= 4242", True),
     ("process.pid > 4241", True), ("process.pid > 4242", False), ("process.pid >= 4242", True),
     ('process.name > "a"', True), ('process.name < "a"', False)],
)
def test_ordering_operators(condition, expected):
    assert where(condition, CMD) is expected


def test_ordering_across_types_is_false():
    assert not where('process.pid > "1"', CMD)
    assert not where("process.name > 1", CMD)


def test_colon_is_case_insensitive_wildcard():
    assert where('process.name : "CMD.EXE"', CMD)
    assert where('process.name : "c*"', CMD)
    assert where('process.executable : "?:\\\\windows\\\\system32\\\\*"', CMD)
    assert not where('process.name : "cmd"', CMD)


def test_colon_against_a_list():
    assert where('process.name : ("notepad.exe", "C?D.*")', CMD)
    assert not where('process.name : ("notepad.exe", "powershell*")', CMD)


def test_question_mark_is_exactly_one_character():
    assert where('process.name : "cm?.exe"', CMD)
    assert not where('process.name : "c?.exe"', CMD)
    assert not where('process.name : "cmd?.exe"', CMD)


def test_star_matches_empty_and_any_run():
    assert where('process.name : "*cmd.exe*"', CMD)
    assert where('process.name : "c*d*e"', CMD)
    assert where('process.name : "*"', CMD)


def test_in_is_case_sensitive():
    assert where('process.name in ("notepad.exe", "cmd.exe")', CMD)
    assert not where('process.name in ("CMD.EXE")', CMD)
    assert not where('process.name in ("cmd*")', CMD)


def test_in_tilde_is_case_insensitive():
    assert where('process.name in~ ("CMD.EXE", "x")', CMD)


def test_not_in():
    assert where('process.name not in ("a.exe", "b.exe")', CMD)
    assert not where('process.name not in ("cmd.exe")', CMD)
    assert where('process.name not in~ ("A.EXE")', CMD)
    assert not where('process.name not in~ ("CMD.EXE")', CMD)


def test_in_with_numbers():
    assert where("process.pid in (1, 4242)", CMD)
    assert not where('process.pid in ("4242")', CMD)


def test_like_is_case_sensitive_wildcard():
    assert where('process.name like "cmd.*"', CMD)
    assert not where('process.name like "CMD.*"', CMD)
    assert where('process.name like ("x", "c?d.exe")', CMD)


def test_like_tilde_is_case_insensitive():
    assert where('process.name like~ "CMD.*"', CMD)


def test_regex_must_match_whole_string():
    assert where('process.name regex "c.d\\\\.exe"', CMD)
    assert not where('process.name regex "cmd"', CMD)
    assert where('process.name regex ".*md.*"', CMD)


def test_regex_case_and_tilde():
    assert not where('process.name regex "CMD\\\\.EXE"', CMD)
    assert where('process.name regex~ "CMD\\\\.EXE"', CMD)
    assert where('process.name regex ("x", "[a-z]+\\\\.exe")', CMD)


def test_invalid_regex_is_a_syntax_error():
    with pytest.raises(EqlSyntaxError) as err:
        compile_query('any where x regex "a(b"')
    assert err.value.column == 19  # the pattern literal


def test_not_and_or_and_precedence():
    ev = event(a=1, b=2, c=3)
    assert where("a == 1 and b == 2", ev)
    assert not where("a == 1 and b == 3", ev)
    assert where("a == 9 or b == 2", ev)
    assert where("not a == 9", ev)
    assert not where("not (a == 1 or b == 9)", ev)
    # and binds tighter than or
    assert where("a == 1 or b == 9 and c == 9", ev)
    assert not where("(a == 1 or b == 9) and c == 9", ev)


def test_colon_with_a_number_compares_equal():
    assert where("process.pid : 4242", CMD)
    assert where('process.pid : "42*"', CMD)


def test_event_in_several_categories_matches_a_query_once():
    q = compile_query("any where x == 1")
    assert len(q.run([event(["process", "api"], x=1)])) == 1
    q = compile_query("process where x == 1")
    assert len(q.run([event(["process", "process"], x=1)])) == 1
