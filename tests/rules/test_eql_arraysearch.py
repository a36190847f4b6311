"""``_arraysearch``: variable names, nesting, scalar arrays and the frames it reports."""

import pytest

from callstack_forensics.eql import EqlSyntaxError, compile_query

from .helpers import event, where

STACK = [
    {"symbol_info": "c:\\windows\\system32\\ntdll.dll!NtCreateUserProcess+0x14", "protection": "R-X"},
    {"symbol_info": "c:\\windows\\system32\\kernelbase.dll!CreateProcessW+0x66", "protection": "R-X"},
    {"symbol_info": "Unbacked+0x1b2", "protection": "RWX",
     "code_signature": [{"trusted": False}, {"trusted": True, "subject_name": "Contoso"}]},
]
EV = event(process__thread__Ext__call_stack=STACK, tags=["a", "bb"])


def frames_of(query, ev=EV):
    matches = compile_query(query).run([ev])
    assert len(matches) == 1
    return matches[0].frames


@pytest.mark.parametrize("var", ["$entry", "$f", "$frame_1"])
def test_any_variable_name(var):
    assert where(f'_arraysearch(process.thread.Ext.call_stack, {var}, {var}.symbol_info : "Unbacked*")', EV)
    assert not where(f'_arraysearch(process.thread.Ext.call_stack, {var}, {var}.symbol_info : "nope*")', EV)


def test_condition_applies_to_one_element():
    # protection RWX and a kernelbase symbol exist, but not on the same frame
    assert not where('_arraysearch(process.thread.Ext.call_stack, $f, $f.protection == "RWX" and '
                     '$f.symbol_info : "*kernelbase*")', EV)


def test_nested_arraysearch():
    query = ('_arraysearch(process.thread.Ext.call_stack, $f, '
             '_arraysearch($f.code_signature, $s, $s.trusted == true and $s.subject_name == "Contoso"))')
    assert where(query, EV)
    assert frames_of(f"any where {query}") == [
        ("process.thread.Ext.call_stack", 2),
        ("process.thread.Ext.call_stack[2].code_signature", 1),
    ]


def test_scalar_array_with_bare_variable():
    assert where('_arraysearch(tags, $t, $t == "bb")', EV)
    assert where("_arraysearch(tags, $t, length($t) == 2)", EV)
    assert not where('_arraysearch(tags, $t, $t == "c")', EV)


def test_missing_array_is_false():
    assert not where("_arraysearch(nothing.here, $f, $f.x == 1)", EV)
    assert where("not _arraysearch(nothing.here, $f, $f.x == 1)", EV)


def test_matched_frames_name_the_first_matching_element():
    assert frames_of('any where _arraysearch(process.thread.Ext.call_stack, $f, $f.protection : "R*")') == [
        ("process.thread.Ext.call_stack", 0)
    ]


def test_frames_under_not_are_not_reported():
    query = ('any where not _arraysearch(process.thread.Ext.call_stack, $f, $f.symbol_info : "x*") and '
             '_arraysearch(process.thread.Ext.call_stack, $g, $g.protection == "RWX")')
    assert frames_of(query) == [("process.thread.Ext.call_stack", 2)]


def test_frames_of_a_failed_branch_are_dropped():
    query = ('any where (_arraysearch(process.thread.Ext.call_stack, $f, $f.protection == "RWX") and x == 1) '
             'or tags == "a"')
    assert frames_of(query) == []


def test_variable_outside_its_search_is_an_error():
    with pytest.raises(EqlSyntaxError) as err:
        compile_query('any where _arraysearch(a, $f, $f.x == 1) and $f.y == 2')
    assert "$f" in err.value.message
    assert err.value.column == 46


def test_second_argument_must_be_a_variable():
    with pytest.raises(EqlSyntaxError) as err:
        compile_query("any where _arraysearch(a, b, true)")
    assert "$variable" in err.value.message
