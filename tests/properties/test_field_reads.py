"""A compiled field read gives what the general walk gives, whatever the event's shape: nested
keys, flattened dotted keys beside them, arrays of objects on the way, scalars (strings among them)
where an object was expected, and keys that are missing at any depth. The compiled read takes a
short path for plain chains and for misses; this is what keeps the short path honest."""

from __future__ import annotations

from hypothesis import given, strategies as st

from callstack_forensics.eql.fields import compile_getter, lookup

from .common import PROPERTY, bounded

SEGMENTS = ["a", "b", "c"]
KEYS = SEGMENTS + ["a.b", "b.c", "a.b.c", "c.a"]

# No None values: a key present with None is a value for the short path and "keep looking" for
# the walk (dotted siblings), by design, so it is no disagreement worth a test.
scalars = st.one_of(st.integers(-3, 3), st.sampled_from(SEGMENTS + ["x", "abc", ""]), st.booleans())
events = st.recursive(
    scalars,
    lambda inner: st.one_of(st.dictionaries(st.sampled_from(KEYS), inner, max_size=5),
                            st.lists(inner, max_size=3)),
    max_leaves=20,
)
paths = st.lists(st.sampled_from(SEGMENTS + ["a.b"]), min_size=1, max_size=4).map(tuple)


@PROPERTY
@given(st.dictionaries(st.sampled_from(KEYS), events, max_size=5), paths)
def test_compiled_read_is_the_general_walk(event, path):
    with bounded():
        assert compile_getter(path)(event) == lookup(event, path)


def test_a_miss_behind_a_flattened_key_is_found():
    """The cases the short path must not answer alone: a dotted key beside the missing one, a
    scalar or an array where the chain expected an object, a substring of a string."""
    read = compile_getter(("process", "thread", "Ext", "checks"))
    assert read({"process": {"thread": {"Ext": {}}, "thread.Ext": {"checks": 5}}}) == 5
    assert read({"process": {"thread": {"Ext": {}}}, "process.thread.Ext.checks": 6}) == 6
    assert read({"process": {"thread": "Ext checks"}}) is None
    assert read({"process": {"thread": [{"Ext": {"checks": 1}}, {"Ext": {}}, {"Ext": {"checks": 2}}]}}) == [1, 2]
    assert read({"process": {"thread": {"Ext": {"checks": [3]}}}}) == [3]
    assert read({"process": {"thread": {"Ext": {"other": 1}}}}) is None
    assert read({"process": None}) is None
