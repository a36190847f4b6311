"""Syntax errors carry the line and column of the problem and a message in the dialect's terms."""

import pytest

from callstack_forensics.eql import EqlSyntaxError, compile_query, parse_query


def error_of(query):
    with pytest.raises(EqlSyntaxError) as err:
        compile_query(query)
    return err.value


def test_unexpected_token_position_and_expectations():
    err = error_of('process where process.name == "a" and and x == 1')
    assert (err.line, err.column) == (1, 39)
    assert "unexpected 'and'" in err.message
    assert "a field name" in err.message


def test_position_on_a_later_line():
    err = error_of('process where\n  process.name == "a" and\n  process.pid === 4')
    assert (err.line, err.column) == (3, 17)


def test_end_of_query():
    err = error_of("process where process.name ==")
    assert "end of query" in err.message
    assert (err.line, err.column) == (1, 30)


def test_missing_closing_bracket():
    err = error_of('sequence [process where true]\n [file where x == 1')
    assert "expected ']'" in err.message
    assert err.line == 2


def test_missing_colon_before_a_list_gets_a_hint():
    err = error_of('library where _arraysearch(a, $entry, $entry.symbol_info\n ("x", "y"))')
    assert (err.line, err.column) == (2, 2)
    assert "missing" in err.message


def test_unterminated_string():
    err = error_of('process where process.name == "cmd.exe')
    assert "unterminated string" in err.message
    assert (err.line, err.column) == (1, 31)


def test_string_broken_over_lines_is_reported():
    err = error_of('process where x : ("a|b|\n c")')
    assert "unterminated string" in err.message


def test_unterminated_comment():
    err = error_of("process where x == 1 /* never closed")
    assert err.message == "unterminated /* comment" and err.column == 22


def test_unexpected_character():
    err = error_of("process where x == #")
    assert err.column == 20 and "unexpected character" in err.message


def test_list_after_equals_is_rejected():
    err = error_of('process where x == ("a", "b")')
    assert "list" in err.message and err.column == 17


def test_list_in_function_argument_is_rejected():
    assert "list" in error_of('process where length(("a", "b")) == 2').message


def test_dotted_event_class_is_rejected():
    assert "event category" in error_of("process.name where true").message


def test_bad_runs_and_maxspan():
    assert "runs" in error_of("sequence [process where true] with runs=0 [file where true]").message
    assert "duration" in error_of("sequence with maxspan=5 [process where true] [file where true]").message


def test_missing_event_brackets_not_supported():
    assert "not supported" in error_of("sequence [process where true] ![file where true]").message


def test_str_includes_position():
    err = error_of("process where ==")
    assert str(err).startswith("line 1, column 15: ")


def test_bytes_input():
    assert parse_query(b'process where x == 1').category == "process"
    with pytest.raises(EqlSyntaxError):
        parse_query(b"\xff\xfe")


def test_deep_parentheses_are_fine():
    assert compile_query("any where " + "(" * 5000 + "x == 1" + ")" * 5000).matches({"x": 1})


def test_very_deep_nesting_is_a_syntax_error_not_a_crash():
    err = error_of("any where " + "not " * 5000 + "x == 1")
    assert "nests too deeply" in err.message
