"""Literals, field lookup, multi-valued fields and null semantics."""

import pytest

from callstack_forensics.eql import EqlSyntaxError, parse_query

from .helpers import event, where


def test_backslash_escapes():
    ev = event(path="C:\\Windows")
    assert where('path == "C:\\\\Windows"', ev)  # EQL source "C:\\Windows" is one backslash
    assert where('x == "a\\"b"', event(x='a"b'))
    assert where('x == "tab\\there"', event(x="tab\there"))
    assert where('x == "\\u{41}\\u0042"', event(x="AB"))


def test_unknown_escape_is_an_error_with_position():
    with pytest.raises(EqlSyntaxError) as err:
        parse_query('any where path == "C:\\Windows"')
    assert (err.value.line, err.value.column) == (1, 22)  # the backslash
    assert "backslash" in err.value.message


def test_triple_quoted_strings_are_raw():
    assert where('path == """C:\\Windows"""', event(path="C:\\Windows"))
    assert where('x == """say "hi" """', event(x='say "hi" '))


def test_question_mark_raw_strings():
    assert where('path == ?"C:\\Windows"', event(path="C:\\Windows"))


def test_single_quoted_strings():
    assert where("x == 'abc'", event(x="abc"))


def test_numbers_booleans_null():
    ev = event(n=3, f=1.5, t=True, z=False, none=None)
    assert where("n == 3 and f == 1.5 and f > 1 and n == 3.0", ev)
    assert where("t == true and z == false", ev)
    assert where("none == null and missing == null", ev)
    assert not where("t == 1", ev)  # booleans never equal numbers
    assert where("n == -(-3)", ev)
    assert where("-n < 0", ev)


def test_true_does_not_equal_the_string():
    assert not where('t == "true"', event(t=True))


def test_nested_and_flattened_fields():
    assert where('process.name == "a"', event(process__name="a"))
    assert where('process.name == "a"', {"process.name": "a"})
    assert where('process.parent.name == "b"', {"process": {"parent.name": "b"}})


def test_backtick_field_names():
    assert where('`my-field` == 1', event(**{"my-field": 1}))
    assert where('a.`odd name`.b == 2', {"a": {"odd name": {"b": 2}}})


def test_at_timestamp_field():
    assert where('@timestamp : "2024*"', {"@timestamp": "2024-05-01T00:00:00Z"})


def test_optional_field_syntax():
    assert where('?process.name == "a"', event(process__name="a"))
    assert where("?nothing.here == null", event())


def test_multi_valued_array_of_scalars():
    ev = event(tags=["alpha", "beta"])
    assert where('tags == "beta"', ev)
    assert where('tags : "ALPH*"', ev)
    assert not where('tags == "gamma"', ev)
    assert where('tags in ("x", "alpha")', ev)


def test_multi_valued_not_equals_means_no_element_equal():
    ev = event(tags=["alpha", "beta"])
    assert where('tags != "gamma"', ev)
    assert not where('tags != "beta"', ev)


def test_field_through_a_list_of_objects():
    ev = event(process__thread__Ext__call_stack=[{"symbol_info": "a!x"}, {"symbol_info": "b!ServiceMain+0x1"}])
    assert where('process.thread.Ext.call_stack.symbol_info : "*!ServiceMain*"', ev)
    assert not where('process.thread.Ext.call_stack.symbol_info : "*!Nope*"', ev)


def test_missing_fields_are_null():
    ev = event(a="x")
    assert where("b == null", ev)
    assert not where("b != null", ev)
    assert where("a != null", ev)
    assert not where("a == null", ev)
    assert where("null == b", ev)


def test_comparisons_with_missing_fields_are_false_and_not_negates():
    ev = event(a="x")
    for condition in ('b == "x"', 'b : "*"', "b < 1", 'b like "*"', 'b regex ".*"', 'b in ("x")', 'b != "y"'):
        assert not where(condition, ev), condition
    assert where('not b : "x"', ev)
    assert where('not b == "x"', ev)


def test_empty_array_is_null():
    assert where("tags == null", event(tags=[]))
    assert where("tags == null", event(tags=[None]))


def test_comments_in_queries():
    query = """any where // a line comment
      a == 1 /* a block
      comment */ and b == 2"""
    assert where(query.removeprefix("any where "), event(a=1, b=2))


def test_arithmetic_operators():
    ev = event(a=7, b=2)
    assert where("a + b == 9 and a - b == 5 and a * b == 14", ev)
    assert where("a / b == 3 and a % b == 1", ev)
    assert where("a / 0 == null", ev)
    assert where("1.0 * a / b == 3.5", ev)


def test_backtick_name_with_dots_reads_nested_or_flattened():
    assert where('`process.name` == "a"', event(process__name="a"))
    assert where('`process.name` == "a"', {"process.name": "a"})
