"""`make rule-coverage RULES=DIR`: how many rules of a folder could fire on our events.

Every bundled scenario is forged into out/rule-coverage/ and its events written twice with
`callstack-forensics events`: from the memory image alone, and with `--files` pointing at a
triage collection of the scenario's own module files (built here by code, with the files at
their Windows paths, as KAPE and Velociraptor keep them). A rule counts when every event class
and every field it reads holds a value in some event of those sets; the fields still missing are
printed by how many rules read them (see callstack_forensics/rules/coverage.py).

    python samples/rule_coverage.py ~/elastic/behavior/rules            # Windows rules (default)
    python samples/rule_coverage.py rules --scenarios benign_desktop --os any
    python samples/rule_coverage.py rules --field-usage ../shared/docs/elastic-windows-field-usage.md
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from callstack_forensics.rules import load_rules  # noqa: E402
from callstack_forensics.rules.coverage import (  # noqa: E402
    CoverageRun, Held, coverage, for_os, parse_field_usage, render, render_usage)

CLI = Path(sys.executable).parent / "callstack-forensics"
SCENARIOS = ROOT / "samples" / "scenarios"


def scenario_paths(names: list[str] | None) -> list[Path]:
    """The scenario files at the top of samples/scenarios (base/ holds the shared base system)."""
    every = sorted(SCENARIOS.glob("*.toml"))
    if not names:
        return every
    chosen = [p for p in every if p.stem in names]
    unknown = sorted(set(names) - {p.stem for p in chosen})
    if unknown:
        raise SystemExit(f"no such scenario: {', '.join(unknown)} (see {SCENARIOS})")
    return chosen


def forge_scenario(scenario: Path, out: Path):
    """The forged image (and its plans: which file each module was mapped from)."""
    from callstack_forensics.forge.builder import forge

    return forge(scenario, out / f"{scenario.stem}.raw")


def events_of(image: Path, out: Path, extra: list[str], label: str) -> list[dict]:
    """The image's events as `callstack-forensics events` writes them (with ``extra`` options)."""
    target = out / f"{image.stem}.{label}.ndjson"
    cmd = [str(CLI), "events", str(image), "--symbols", str(out / "symbols"), "--cache-dir", str(out / "volcache"),
           "--quiet", "-o", str(target), *extra]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr}")
    return [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines() if line.strip()]


def file_options(result, out: Path) -> list[str]:
    """``--files DIR``: a collection of the scenario's module files, signed with a test certificate
    when osslsigncode is installed (as a vendor's files are signed)."""
    from samples.collection import build_collection

    folder = out / "files" / result.image.stem
    shutil.rmtree(folder, ignore_errors=True)
    build_collection(result.plans, folder, sign=shutil.which("osslsigncode") is not None)
    return ["--files", str(folder)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rules", nargs="*", type=Path, default=[ROOT / "rules"], help="rule folders or files")
    parser.add_argument("--os", default="windows", help="count the rules for this OS ('any': all rules)")
    parser.add_argument("--scenarios", nargs="*", help="scenario names (default: every bundled scenario)")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "rule-coverage")
    parser.add_argument("--top", type=int, default=40, help="how many missing fields to list")
    parser.add_argument("--field-usage", type=Path, help="a markdown table of fields by rule count (| N | `field` |): "
                        "say which of them our events hold")
    args = parser.parse_args(argv)
    ruleset = load_rules(args.rules)
    rules = for_os(ruleset.rules, None if args.os == "any" else args.os)
    args.out.mkdir(parents=True, exist_ok=True)
    memory, files = Held(), Held()
    counts = {"memory": 0, "files": 0}
    with_files = False
    for scenario in scenario_paths(args.scenarios):
        result = forge_scenario(scenario, args.out)
        image = result.image
        plain = events_of(image, args.out, [], "memory")
        counts["memory"] += len(plain)
        for event in plain:
            memory.add_event(event)
        options = file_options(result, args.out)
        richer = events_of(image, args.out, options, "files")
        with_files = True
        counts["files"] += len(richer)
        for event in richer:
            files.add_event(event)
        print(f"{scenario.stem}: {len(plain)} events" + (f", {len(richer)} with --files" if options else ""),
              file=sys.stderr, flush=True)
    runs = [CoverageRun("memory image alone", counts["memory"], coverage(rules, memory))]
    if with_files:
        runs.append(CoverageRun("with --files", counts["files"], coverage(rules, files)))
    print(render(runs, len(ruleset.rules), len(ruleset.errors), None if args.os == "any" else args.os, args.top))
    if args.field_usage:
        usage = parse_field_usage(args.field_usage.read_text(encoding="utf-8"))
        print(render_usage(usage, [("memory image alone", memory), ("with --files", files)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
