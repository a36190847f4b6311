"""Forged images and a real Chromium for the case-report tests.

The browser tests are the proof the issue asks for (hostile strings from an image do not run
in a real browser), so they never skip: without Chromium they fail and say how to install it.
The hostile image is built from a scenario written here, not shipped under samples/scenarios:
it is a test of the report, not a detection sample with rules to expect.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from callstack_forensics.forge import forge
from callstack_forensics.report.browser import BrowserError, Chromium

REPO = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).parent / "callstack-forensics"

# Script payloads set the title, markup payloads set the body's id: a browser that ran any of
# them leaves a trace in the DOM. All are lower case: symbol_info lower-cases module paths.
NAME_SCRIPT = "<script>x.exe"  # _EPROCESS.ImageFileName keeps 14 characters
NAME_ATTR = '"><i id=xn>'
KERNEL_NAME = "<script>kern"
COMMAND_LINE = ("notepad.exe \"<script>document.title='pwned-cmd'</script>\" "
                "\"><img src=x onerror=\"document.body.id='pwned-cmd'\">")
EXE_PATH = "C:\\Users\\Public\\\"><img src=x onerror=document.body.id='pwned-path'>\\notepad.exe"
DLL_PATH = "C:\\Users\\Public\\<script>document.title='pwned-dll'</script>\\user32.dll"
IMAGE_NAME = "mem\"><img src=x onerror=document.body.id='pwned-file'>.raw"
RULE_NAME = "<script>document.title='pwned-rule'</script>"
RULE_DESCRIPTION = "Fires on the hostile process. \"><img src=x onerror=document.body.id='pwned-desc'>"
RULE_QUERY_COMMENT = "// </pre><img src=x onerror=document.body.id='pwned-query'>"
BROKEN_RULE_FILE = "<img src=x onerror=document.body.id='pwned-rulefile'>.toml"

GUI_STACK = ["win32u.dll!NtUserGetMessage", "user32.dll!GetMessageW", "notepad.exe!MessageLoop", "notepad.exe!wWinMain",
             "notepad.exe!wWinMainCRTStartup", "kernel32.dll!BaseThreadInitThunk", "ntdll.dll!RtlUserThreadStart"]


def hostile_scenario() -> str:
    """The scenario as TOML text; json.dumps writes valid TOML basic strings."""
    s = json.dumps

    def gui(pid: int, ppid: int, name: str, extra: str = "") -> str:
        return (f"[[process]]\npid = {pid}\nppid = {ppid}\nname = {s(name)}\nimage = \"notepad.exe\"\nsession = 1\n{extra}"
                f"  [[process.thread]]\n  tid = {pid + 4}\n  stack = {s(GUI_STACK)}\n  wait_reason = \"WrUserRequest\"\n")

    return "\n".join([
        'title = "hostile strings in every field the report prints"\nexpect = []\n',
        '[system]\nbase = "none"\n',  # only these processes: the filter tests count them
        '[[process]]\npid = 4\nname = "System"\nkernel = true\nsystem_threads = 2\n',
        f"[[process]]\npid = 8\nppid = 4\nname = {s(KERNEL_NAME)}\nkernel = true\nsystem_threads = 1\n",
        gui(4120, 3140, NAME_SCRIPT, f"path = {s(EXE_PATH)}\ncommand_line = {s(COMMAND_LINE)}\n"
                                     f"  [[process.module]]\n  name = \"user32.dll\"\n  path = {s(DLL_PATH)}\n"),
        gui(4200, 4120, NAME_ATTR),
        # Parents that name each other: the tree must still list both, once.
        gui(4300, 4400, "cycle-a.exe"),
        gui(4400, 4300, "cycle-b.exe"),
    ])


def hostile_rule() -> str:
    s = json.dumps
    return (f"[rule]\nid = \"5a0c3a55-0000-4000-8000-00000000e5c4\"\nname = {s(RULE_NAME)}\nseverity = \"high\"\n"
            f"description = {s(RULE_DESCRIPTION)}\n"
            "query = '''\nany where process.command_line : \"*<script>*\" and\n"
            "  _arraysearch(process.thread.Ext.call_stack, $f, $f.symbol_info : \"*onerror*\")\n"
            f"{RULE_QUERY_COMMENT}\n'''\n")


@dataclass(frozen=True)
class Forged:
    image: Path
    symbols: Path
    rules: Path | None = None


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str


def report(image: Path, out: Path, *args: str | Path) -> Run:
    """``callstack-forensics report`` as a responder runs it (the installed console script)."""
    cache = out.parent / "volcache"
    cmd = [str(CLI), "report", str(image), "-o", str(out), "--cache-dir", str(cache), *map(str, args)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    return Run(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="session")
def chromium() -> Chromium:
    try:
        return Chromium.find()
    except BrowserError as exc:
        pytest.fail(f"The case-report browser tests must run, not skip, and need Chromium: {exc}. "
                    "Run `make system-deps` as root on Debian (it installs the `chromium` package), "
                    "or set CHROMIUM=/path/to/chromium.", pytrace=False)


@pytest.fixture(scope="session")
def hostile(tmp_path_factory) -> Forged:
    folder = tmp_path_factory.mktemp("hostile")
    scenario = folder / "hostile.toml"
    scenario.write_text(hostile_scenario(), encoding="utf-8")
    image = folder / IMAGE_NAME
    forge(scenario, image)
    rules = folder / "rules"
    rules.mkdir()
    (rules / "hostile.toml").write_text(hostile_rule(), encoding="utf-8")
    (rules / BROKEN_RULE_FILE).write_text("not [[[ toml\n", encoding="utf-8")
    return Forged(image, folder / "symbols", rules)


@pytest.fixture(scope="session")
def fork(tmp_path_factory) -> Forged:
    folder = tmp_path_factory.mktemp("fork")
    image = folder / "dirty_vanity_fork.raw"
    forge(REPO / "samples" / "scenarios" / "dirty_vanity_fork.toml", image)
    return Forged(image, folder / "symbols")


@pytest.fixture(scope="session")
def fork_report(fork, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fork-report") / "case.html"
    run = report(fork.image, out, "--symbols", fork.symbols, "--quiet")
    assert run.code == 1, run.stderr
    return out


@pytest.fixture(scope="session")
def hostile_report(hostile, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hostile-report") / "case.html"
    run = report(hostile.image, out, "--symbols", hostile.symbols, "--rules", hostile.rules, "--json", "--quiet")
    assert run.code == 1, run.stderr  # the hostile rule fires on the hostile process
    assert json.loads(run.stdout) == {"report": str(out.resolve()), "findings": 1}
    return out
