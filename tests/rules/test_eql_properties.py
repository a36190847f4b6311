"""Property tests: the parser only ever fails with EqlSyntaxError."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callstack_forensics.eql import EqlSyntaxError, compile_query, parse_query

PIECES = [
    "process", "file", "any", "where", "and", "or", "not", "==", "!=", "<", "<=", ">", ">=", ":", "in",
    "in~", "like", "like~", "regex", "regex~", "(", ")", "[", "]", ",", "process.name", "$e", "$e.x",
    '"a*"', '"C:\\\\x"', '"""raw"""', '?"r"', "1", "2.5", "true", "false", "null", "_arraysearch",
    "startswith~", "length", "cidrmatch", "concat", "sequence", "by", "with", "maxspan=1m", "runs=2",
    "until", "as", "event0", "event0.process.name", "descendant", "child", "of", "+", "-", "*", "/",
    "%", "`odd name`", "//c\n", "/*c*/", "?", "~", "\n",
]


def _must_parse_or_fail_cleanly(text):
    try:
        compile_query(text)
    except EqlSyntaxError as err:
        assert err.line >= 1 and err.column >= 1
        assert err.message


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=25))
def test_queries_from_grammar_pieces(pieces):
    _must_parse_or_fail_cleanly(" ".join(pieces))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=20))
def test_event_query_prefix_with_random_condition(pieces):
    _must_parse_or_fail_cleanly("process where " + " ".join(pieces))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_random_text(text):
    _must_parse_or_fail_cleanly(text)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes(data):
    try:
        parse_query(data)
    except EqlSyntaxError:
        pass


# ---- evaluation never fails on odd events (they come from hostile images) ----------------------

_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=12))
_KEYS = st.sampled_from(["process", "event", "category", "action", "name", "thread", "Ext", "call_stack",
                         "symbol_info", "protection", "parent", "pid", "entity_id", "@timestamp", "dll",
                         "process.name", "call_stack_summary", "callsite_leading_bytes", "x"])
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                          st.dictionaries(_KEYS, inner, max_size=4)), max_leaves=25)


def _shipped_rules():
    from callstack_forensics.rules import default_rules_dir, load_rules

    return load_rules([default_rules_dir()])


_RULESET = _shipped_rules()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.dictionaries(_KEYS, _VALUES, max_size=6), max_size=6))
def test_shipped_rules_never_fail_on_odd_events(events):
    for match in _RULESET.run(events):
        assert match.events
