"""Sequences (by, maxspan, until, aliases, per-bracket by, runs) and lineage."""

import pytest

from callstack_forensics.eql import EqlSyntaxError, compile_query, parse_query

from .helpers import event


def ev(category, ts=None, **fields):
    out = event(category, **fields)
    if ts is not None:
        out["@timestamp"] = f"2024-05-01T10:{ts // 60:02d}:{ts % 60:02d}Z"
    return out


def names(matches):
    return [[e.get("n") for e in m.events] for m in matches]


def test_sequence_orders_steps():
    q = compile_query('sequence [process where n == "a"] [file where n == "b"]')
    assert names(q.run([ev("process", n="a"), ev("file", n="b")])) == [["a", "b"]]
    assert q.run([ev("file", n="b"), ev("process", n="a")]) == []


def test_sequence_uses_timestamps_not_input_order():
    q = compile_query('sequence [process where n == "a"] [file where n == "b"]')
    assert names(q.run([ev("file", 20, n="b"), ev("process", 10, n="a")])) == [["a", "b"]]


def test_sequence_by_joins_on_field():
    q = compile_query('sequence by process.entity_id [process where n == "a"] [file where n == "b"]')
    events = [ev("process", n="a", process__entity_id="p1"), ev("file", n="b", process__entity_id="p2"),
              ev("file", n="b", process__entity_id="p1")]
    matches = q.run(events)
    assert len(matches) == 1
    assert matches[0].events[1]["process"]["entity_id"] == "p1"


def test_sequence_by_with_several_fields():
    q = compile_query('sequence by host.id, process.pid [process where n == "a"] [file where n == "b"]')
    events = [ev("process", n="a", host__id="h", process__pid=1), ev("file", n="b", host__id="h", process__pid=2),
              ev("file", n="b", host__id="x", process__pid=1)]
    assert q.run(events) == []
    events.append(ev("file", n="b", host__id="h", process__pid=1))
    assert len(q.run(events)) == 1


def test_null_join_keys_never_join():
    q = compile_query('sequence by k [process where n == "a"] [file where n == "b"]')
    assert q.run([ev("process", n="a"), ev("file", n="b")]) == []


def test_per_bracket_by():
    q = compile_query('sequence [process where n == "a"] by process.entity_id [file where n == "b"] by owner.id')
    events = [ev("process", n="a", process__entity_id="e7"), ev("file", n="b", owner__id="e8"),
              ev("file", n="b", owner__id="e7")]
    matches = q.run(events)
    assert len(matches) == 1 and matches[0].events[1]["owner"]["id"] == "e7"


@pytest.mark.parametrize("span,gap,found", [("30s", 20, True), ("30s", 40, False), ("1m", 59, True),
                                             ("1m", 61, False), ("1h", 3000, True), ("1500ms", 1, True),
                                             ("1500ms", 2, False), ("1d", 3500, True)])
def test_maxspan_units(span, gap, found):
    q = compile_query(f'sequence with maxspan={span} [process where n == "a"] [file where n == "b"]')
    matches = q.run([ev("process", 0, n="a"), ev("file", gap, n="b")])
    assert bool(matches) is found


def test_maxspan_is_not_checked_without_timestamps():
    q = compile_query('sequence with maxspan=1s [process where n == "a"] [file where n == "b"]')
    assert len(q.run([ev("process", n="a"), ev("file", n="b")])) == 1


def test_until_cancels_pending_sequences():
    q = compile_query('sequence by k [process where n == "a"] [file where n == "b"] until [process where n == "stop"]')
    base = [ev("process", 0, n="a", k=1)]
    assert len(q.run(base + [ev("file", 2, n="b", k=1)])) == 1
    assert q.run(base + [ev("process", 1, n="stop", k=1), ev("file", 2, n="b", k=1)]) == []
    assert len(q.run(base + [ev("process", 1, n="stop", k=2), ev("file", 2, n="b", k=1)])) == 1


def test_alias_lets_a_later_bracket_read_an_earlier_event():
    q = compile_query('sequence [file where event.action == "creation"] as event0 '
                      '[process where startswith~(process.executable, event0.file.path)]')
    drop = ev("file", 0, event__action="creation", file__path="C:\\Temp\\x.exe")
    run_it = ev("process", 5, process__executable="c:\\temp\\x.exe")
    other = ev("process", 6, process__executable="c:\\windows\\notepad.exe")
    assert len(q.run([drop, other])) == 0
    matches = q.run([drop, other, run_it])
    assert len(matches) == 1 and matches[0].events == [drop, run_it]


def test_alias_equality_between_fields():
    q = compile_query("sequence [process where true] as event0 [file where file.path == event0.process.executable]")
    events = [ev("process", 0, process__executable="a"), ev("file", 1, file__path="b"), ev("file", 2, file__path="a")]
    matches = q.run(events)
    assert len(matches) == 1 and matches[0].events[1]["file"]["path"] == "a"


def test_alias_used_before_its_bracket_is_an_error():
    with pytest.raises(EqlSyntaxError):
        parse_query("sequence [process where true] as a [file where true] as a")
    tree = compile_query("sequence [process where event1.x == 1] [file where true] as event1")
    # event1 is not yet defined in the first bracket: it reads an ordinary field named event1.x
    assert tree.run([ev("process", 0, event1={"x": 1}), ev("file", 1)])


def test_runs_repeats_a_bracket():
    q = compile_query('sequence [process where n == "a"] with runs=3 [file where n == "b"]')
    two = [ev("process", i, n="a") for i in range(2)] + [ev("file", 5, n="b")]
    three = [ev("process", i, n="a") for i in range(3)] + [ev("file", 5, n="b")]
    assert q.run(two) == []
    matches = q.run(three)
    assert len(matches) == 1 and len(matches[0].events) == 4


def test_each_event_is_used_once():
    q = compile_query("sequence [process where true] [process where true]")
    assert len(q.run([ev("process", i) for i in range(4)])) == 2


def test_sequence_frames_come_from_every_bracket():
    stack = [{"s": "x"}, {"s": "y"}]
    q = compile_query('sequence [process where _arraysearch(st, $f, $f.s == "y")] '
                      '[file where _arraysearch(st, $f, $f.s == "x")]')
    matches = q.run([ev("process", 0, st=stack), ev("file", 1, st=stack)])
    assert matches[0].frames == [("st", 1), ("st", 0)]


def test_by_key_counts_must_agree():
    with pytest.raises(EqlSyntaxError) as err:
        parse_query("sequence [process where true] by a [file where true] by a, b")
    assert "same number" in err.value.message


# ---- lineage ------------------------------------------------------------------------------------

def proc(pid, parent, name, entity=True):
    fields = {"process__pid": pid, "process__name": name, "process__parent__pid": parent}
    if entity:
        fields["process__entity_id"] = f"e{pid}"
        fields["process__parent__entity_id"] = f"e{parent}"
    return event("process", **fields)


TREE = [proc(1, 0, "wininit.exe"), proc(2, 1, "services.exe"), proc(3, 2, "svchost.exe"), proc(4, 3, "cmd.exe"),
        proc(5, 4, "conhost.exe")]


def matched_names(query, events=TREE):
    return [m.events[0]["process"]["name"] for m in compile_query(query).run(events)]


def test_descendant_of():
    assert matched_names('process where descendant of [process where process.name == "services.exe"]') == [
        "svchost.exe", "cmd.exe", "conhost.exe"]


def test_child_of():
    assert matched_names('process where child of [process where process.name == "services.exe"]') == ["svchost.exe"]


def test_event_of():
    events = TREE + [event("file", process__pid=4, process__entity_id="e4", file__name="x")]
    assert [m.events[0]["event"]["category"] for m in compile_query(
        'file where event of [process where process.name == "cmd.exe"]').run(events)] == ["file"]


def test_lineage_combines_with_conditions():
    assert matched_names('process where process.name : "c*" and '
                         'descendant of [process where process.name == "svchost.exe"]') == ["cmd.exe", "conhost.exe"]
    assert matched_names('process where not descendant of [process where process.name == "svchost.exe"]') == [
        "wininit.exe", "services.exe", "svchost.exe"]


def test_lineage_falls_back_to_pids():
    tree = [proc(p.get("process")["pid"], p["process"]["parent"]["pid"], p["process"]["name"], entity=False) for p in TREE]
    assert matched_names('process where descendant of [process where process.name == "svchost.exe"]', tree) == [
        "cmd.exe", "conhost.exe"]


def test_nested_lineage():
    query = ('process where descendant of [process where descendant of '
             '[process where process.name == "wininit.exe"] and process.name == "svchost.exe"]')
    assert matched_names(query) == ["cmd.exe", "conhost.exe"]


def test_lineage_survives_cycles():
    loop = [proc(7, 8, "a.exe"), proc(8, 7, "b.exe")]
    assert matched_names('process where descendant of [process where process.name == "a.exe"]', loop) == ["b.exe"]


def test_object_valued_join_keys_never_join():
    q = compile_query('sequence by k [process where n == "a"] [file where n == "b"]')
    assert q.run([ev("process", n="a", k={"x": 1}), ev("file", n="b", k={"x": 1})]) == []
    assert q.run([ev("process", n="a", k=[{"x": 1}]), ev("file", n="b", k=[{"x": 1}])]) == []
    assert len(q.run([ev("process", n="a", k=["p", "q"]), ev("file", n="b", k=["p", "q"])])) == 1
