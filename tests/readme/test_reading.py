"""How the README test reads Markdown and holds outputs: on small documents, without running anything."""

from __future__ import annotations

from .output import first_difference
from .steps import Command, Snippet, read_readme
from .walk import allowed_exit_codes

DOCUMENT = '''Intro.

```
$ callstack-forensics rules check
22 rules parsed, 0 failures
$ vol -q -p plugins -s out/symbols -f out/a.raw -r jsonl callstacks.events \\
    | jq 'select(.event.category == ["registry"]) | {registry,
          user}'
{
  "user": 1
}
```

```
callstack-forensics analyze IMAGE_OR_DUMP [--symbols DIR]
make samples          # every scenario into out/samples/
vol -p plugins -s DIR -f IMAGE callstacks.stacks [--pid N ...]
error: something printed without its command
```

```toml
query = "not run"
```

```python
print("run")
```

```text
callstack_forensics/   a listing, not run
```
'''


def test_commands_their_outputs_synopses_and_strays_are_told_apart():
    readme = read_readme(DOCUMENT)
    assert readme.steps == [
        Command(4, "callstack-forensics rules check", "22 rules parsed, 0 failures"),
        Command(6, "vol -q -p plugins -s out/symbols -f out/a.raw -r jsonl callstacks.events \\\n"
                   "    | jq 'select(.event.category == [\"registry\"]) | {registry,\n          user}'",
                "{\n  \"user\": 1\n}"),
        Command(16, "make samples          # every scenario into out/samples/", None),
        Snippet(26, 'print("run")\n'),
    ]
    assert [s.line for s in readme.synopses] == [15, 17]
    assert [(s.line, s.text) for s in readme.strays] == [(18, "error: something printed without its command")]


def test_a_capital_inside_a_word_is_no_placeholder():
    readme = read_readme("```\nvol -q -p plugins -s out/s -f out/a.raw --hide-columns RuleId callstacks.detect\n```\n")
    assert len(readme.commands) == 1 and not readme.synopses


def test_outputs_agree_but_for_trailing_spaces_surrounding_blank_lines_and_elapsed_times():
    shown = "  sha256  4294967296/4294967296 0:00:13 77850382f0fcae9a...\n3 findings"
    assert first_difference(shown, "\n  sha256  4294967296/4294967296 0:01:02 77850382f0fcae9a...   \n3 findings\n\n") is None
    assert "output line 2" in first_difference(shown, "  sha256  4294967296/4294967296 0:00:13 77850382f0fcae9a...\n2 findings")
    assert "shows 2 lines" in first_difference(shown, shown + "\nnote: one more line")


def test_a_fleet_run_is_compared_without_what_no_two_runs_share():
    shown = ("fleet: 2 sources on 2 workers, 2 threads at tcp://127.0.0.1:46729\n"
             "done    A  a.raw: 0 findings, 201 threads, 26.0 s\ndone    B  b.raw: 3 findings, 84 threads, 23.5 s\n"
             "2 sources analysed; 57.4 s, 5.2 sources/min, peak memory per worker 259 MiB")
    printed = ("fleet: 2 sources on 2 workers, 2 threads at tcp://127.0.0.1:40111\n"
               "done    B  b.raw: 3 findings, 84 threads, 21.0 s\ndone    A  a.raw: 0 findings, 201 threads, 30.2 s\n"
               "2 sources analysed; 51.0 s, 4.9 sources/min, peak memory per worker 262 MiB")
    command = "callstack-forensics fleet fleet -o acme"
    assert first_difference(shown, printed, command) is None
    assert first_difference(shown, printed.replace("3 findings", "2 findings"), command) is not None
    assert first_difference(shown, printed) is not None  # any other command: in order, exactly
    assert first_difference(shown, printed, "callstack-forensics fleet query acme 'SELECT 1'") is not None


def test_exit_codes_follow_what_the_readme_shows():
    def command(text: str, shown: str | None = None) -> Command:
        return Command(1, text, shown)

    assert allowed_exit_codes(command("callstack-forensics analyze x.raw", "error: x.raw: no such file")) == {2}
    assert allowed_exit_codes(command("callstack-forensics analyze x.raw", "3 findings (22 rules over 9 events)")) == {1}
    assert allowed_exit_codes(command("callstack-forensics detect --events e", "no findings (22 rules over 0 events)")) == {0}
    assert allowed_exit_codes(command("callstack-forensics report x.raw -o case.html")) == {0, 1}
    assert allowed_exit_codes(command("vol -q -p plugins -s s -f x.raw callstacks.detect", "Rule\tSeverity")) == {0}
    assert allowed_exit_codes(command("callstack-forensics fleet f -o acme", "16 findings on 1 of 5 hosts; ...")) == {1}
    assert allowed_exit_codes(command("callstack-forensics fleet f -o acme", "0 findings on 0 of 3 hosts; ...")) == {0}
    assert allowed_exit_codes(command("callstack-forensics fleet query acme 'SELECT 1'", "16 findings on")) == {0}
