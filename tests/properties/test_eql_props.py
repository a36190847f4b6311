"""The EQL front end on random text and on random queries built from the dialect.

``parse_query`` and ``compile_query`` document one error, ``EqlSyntaxError`` (with a position);
a query that compiles must then run over any events, however odd their values, without raising
(events come from hostile images). Queries are built from the dialect of
../shared/docs/eql-dialect.md: comparisons, wildcard and list operators, functions with their
arities and ``~`` forms, ``_arraysearch``, lineage, sequences with ``by``/``maxspan``/``until``.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from callstack_forensics.eql import EqlSyntaxError, compile_query, parse_query
from callstack_forensics.eql.functions import SIGNATURES

from .common import PROPERTY, bounded

FIELDS = ["process.name", "process.pid", "process.executable", "event.category", "event.action", "file.path",
          "dll.name", "process.parent.name", "process.thread.Ext.call_stack_summary", "process.args",
          "process.thread.Ext.call_stack.symbol_info", "process.thread.Ext.call_stack.protection",
          "`odd-name`", "?process.maybe", "registry.data.strings", "user.id", "process.entity_id"]
CLASSES = ["process", "file", "library", "registry", "network", "api", "any", '"quoted-class"']
STRINGS = ['"cmd.exe"', '"C:\\\\Windows\\\\*"', '"*!ServiceMain*"', '"?x"', '""', '"RWX"', '"\\u00e9"', "'single'",
           '"""raw\\d"""', '?"raw*"', '"10.0.0.0/8"']
NUMBERS = ["0", "1", "-1", "4.5", "100000000000", "0.0"]
COMPARE_OPS = ["==", "!=", "<", "<=", ">", ">="]
TEXT_OPS = [":", "in", "in~", "not in", "not in~", "like", "like~", "regex", "regex~"]
REGEXES = ['".*"', '"a|b"', '"[0-9]+"', '"(unclosed"', '"\\\\d{2,}"']

fields = st.sampled_from(FIELDS)
literals = st.one_of(st.sampled_from(STRINGS), st.sampled_from(NUMBERS), st.sampled_from(["true", "false", "null"]))


def _call(args):
    names = sorted(n for n in SIGNATURES if n != "_arraysearch")
    return st.sampled_from(names).flatmap(lambda name: st.builds(
        lambda arity, tilde, values: f"{name}{'~' if tilde else ''}({', '.join(values[:arity])})",
        st.integers(SIGNATURES[name].min_args, SIGNATURES[name].max_args or SIGNATURES[name].min_args + 2),
        st.booleans() if SIGNATURES[name].case_insensitive else st.just(False),
        st.lists(args, min_size=6, max_size=6)))


values = st.recursive(st.one_of(fields, literals),
                      lambda inner: st.one_of(_call(inner), st.builds(lambda a, op, b: f"({a} {op} {b})", inner,
                                                                       st.sampled_from("+-*/%"), inner)),
                      max_leaves=4)


def _comparison():
    plain = st.builds(lambda a, op, b: f"{a} {op} {b}", values, st.sampled_from(COMPARE_OPS), values)
    listed = st.builds(lambda a, op, items: f"{a} {op} ({', '.join(items)})", fields, st.sampled_from(TEXT_OPS),
                       st.lists(st.one_of(st.sampled_from(STRINGS), st.sampled_from(REGEXES)), min_size=1, max_size=4))
    single = st.builds(lambda a, op, b: f"{a} {op} {b}", fields, st.sampled_from([":", "like", "like~", "regex"]),
                       st.one_of(st.sampled_from(STRINGS), st.sampled_from(REGEXES)))
    search = st.builds(lambda v, cond: f'_arraysearch(process.thread.Ext.call_stack, ${v}, {cond})',
                       st.sampled_from(["f", "entry"]), st.sampled_from([
                           '$V.symbol_info : "*ntdll*"', '$V.protection == "RWX"', '$V.call_verified == false',
                           'stringcontains~($V.symbol_info, "Unbacked")']))
    search = search.map(lambda text: text.replace("$V", "$" + text.split("$")[1].split(",")[0]))
    predicate = _call(values)
    return st.one_of(plain, listed, single, search, predicate, st.builds(lambda f: f"{f} != null", fields))


def _conditions():
    leaf = _comparison()
    return st.recursive(leaf, lambda inner: st.one_of(
        st.builds(lambda a, b: f"{a} and {b}", inner, inner),
        st.builds(lambda a, b: f"({a} or {b})", inner, inner),
        st.builds(lambda a: f"not {a}", inner),
        st.builds(lambda kind, cls, a: f"{kind} of [{cls} where {a}]", st.sampled_from(["descendant", "child", "event"]),
                  st.sampled_from(CLASSES), inner),
    ), max_leaves=6)


conditions = _conditions()
event_queries = st.builds(lambda cls, cond: f"{cls} where {cond}", st.sampled_from(CLASSES), conditions)
sequences = st.builds(
    lambda by, span, steps, until: "sequence" + (f" by {by}" if by else "") + (f" with maxspan={span}" if span else "")
    + "".join(f" [{q}]" + (f" by {k}" if k else "") + (" with runs=2" if runs else "") for q, k, runs in steps)
    + (f" until [{until}]" if until else ""),
    st.one_of(st.none(), st.sampled_from(["process.entity_id", "process.pid, user.id"])),
    st.one_of(st.none(), st.sampled_from(["30s", "5m", "1h", "500ms", "2d"])),
    st.lists(st.tuples(event_queries, st.one_of(st.none(), st.sampled_from(["process.entity_id"])), st.booleans()),
             min_size=1, max_size=3),
    st.one_of(st.none(), event_queries),
)

_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=12),
                     st.sampled_from(["cmd.exe", "C:\\Windows\\x.exe", "RWX", "10.1.2.3", "*"]))
_KEYS = st.sampled_from(["process", "event", "category", "action", "name", "thread", "Ext", "call_stack", "pid",
                         "symbol_info", "protection", "parent", "entity_id", "@timestamp", "dll", "args", "file",
                         "path", "process.name", "call_stack_summary", "call_verified", "odd-name", "x"])
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                          st.dictionaries(_KEYS, inner, max_size=4)), max_leaves=20)
events = st.lists(st.dictionaries(_KEYS, _VALUES, max_size=6), max_size=6)


def compile_or_syntax_error(text):
    try:
        return compile_query(text)
    except EqlSyntaxError as err:
        assert err.line >= 1 and err.column >= 1 and err.message
        return None


@PROPERTY
@given(st.text(max_size=300))
def test_random_text_compiles_or_is_a_syntax_error(text):
    with bounded():
        compile_or_syntax_error(text)


@PROPERTY
@given(st.binary(max_size=200))
def test_random_bytes_parse_or_are_a_syntax_error(data):
    with bounded():
        try:
            parse_query(data)
        except EqlSyntaxError:
            pass


@PROPERTY
@given(event_queries, events)
def test_random_event_queries_compile_and_run_on_random_events(text, batch):
    with bounded():
        query = compile_or_syntax_error(text)
        if query is None:
            return
        matches = query.run(batch)
        for event in batch:
            query.matches(event)
    assert all(m.events for m in matches)


@PROPERTY
@given(sequences, events)
def test_random_sequences_compile_and_run_on_random_events(text, batch):
    with bounded():
        query = compile_or_syntax_error(text)
        if query is None:
            return
        matches = query.run(batch)
    assert all(m.events for m in matches)


@PROPERTY
@given(st.sampled_from(CLASSES), st.lists(st.tuples(fields, st.sampled_from(["==", ":", "in", "like~"]),
                                                    st.sampled_from(STRINGS)), min_size=1, max_size=5))
def test_well_formed_queries_always_compile(cls, parts):
    """No syntax error for what the dialect plainly allows: the generator above is not just noise."""
    condition = " and ".join(f"{f} {op} ({s})" if op == "in" else f"{f} {op} {s}" for f, op, s in parts)
    compile_query(f"{cls} where {condition}")
