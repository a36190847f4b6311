"""The benchmark entry point `make bench` calls: shape of its report, on a small run."""

from callstack_forensics.rules.bench import bench_rules, synthetic_events, synthetic_rules


def test_bench_rules_reports_rates():
    result = bench_rules(40, 400)
    assert result["rules"] == 40 and result["events"] == 400
    assert result["matches"] > 0
    assert result["rule_events_per_second"] > 0
    assert result["rule_events_per_second"] == result["rules"] * result["events"] / result["run_seconds"]


def test_synthetic_rules_cover_every_kind_of_query():
    rules = synthetic_rules(60)
    kinds = {("sequence" if r.compiled.sequence else next(iter(r.compiled.categories))) for r in rules}
    assert {"process", "library", "file", "api", "any", "registry", "sequence"} <= kinds
    assert any(r.compiled.lineage for r in rules)
    assert len({r.id for r in rules}) == 60


def test_synthetic_events_get_distinct_process_identities():
    events = synthetic_events(300)
    ids = [e["process"].get("entity_id") for e in events if "process" in e]
    assert len(set(ids)) > len(set(ids[: len(ids) // 3]))
