"""Scenario files (samples/scenarios/*.toml): load, validate, and report mistakes by file and key.

A scenario says what a memory image contains (processes, their modules and
regions, their threads' call chains) and which detection rules must fire on
it. Everything optional has a sensible default; a typo is an error that names
the file, the table and the key, with the closest valid key when there is one.
See samples/scenarios/README.md for the format.
"""

from __future__ import annotations

import datetime as dt
import difflib
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import implants
from .basesystem import DEFAULT_BASE, NO_BASE, base_path, default_base_dir, merge
from .implants import ImplantKeyError, ModuleImplantSpec, ThreadImplantSpec

DEFAULT_TIME = dt.datetime(2024, 5, 14, 10, 22, 31, tzinfo=dt.timezone.utc)
PROTECTIONS = {
    "RWX": "RWX", "R-X": "R-X", "RW-": "RW-", "R--": "R--", "---": "---", "RC-": "RC-", "RCX": "RCX", "--X": "--X",
    "PAGE_EXECUTE_READWRITE": "RWX", "PAGE_EXECUTE_READ": "R-X", "PAGE_READWRITE": "RW-", "PAGE_READONLY": "R--",
    "PAGE_NOACCESS": "---", "PAGE_WRITECOPY": "RC-", "PAGE_EXECUTE_WRITECOPY": "RCX", "PAGE_EXECUTE": "--X",
}
KINDS = ("private", "mapped", "image")


class ScenarioError(Exception):
    """A scenario file is malformed; the message names the file and the key."""


@dataclass(frozen=True)
class ModuleSpec:
    name: str
    arch: str = "x64"
    base: int | None = None
    path: str | None = None
    linked: bool = True
    signing_level: int | None = None
    implants: ModuleImplantSpec = ModuleImplantSpec()  # patches, file object flags, the file the VAD maps


@dataclass(frozen=True)
class RegionSpec:
    name: str
    size: int
    address: int | None = None
    protection: str = "RW-"
    kind: str = "private"
    file: str | None = None
    content: bytes = b""
    paged_out: tuple[int, ...] = ()
    arch: str = "x64"
    # CONTEXT records to write into the region: (RIP as a frame name, tid whose RSP the record holds)
    contexts: tuple[tuple[str, int], ...] = ()
    pe: str | None = None  # a catalog module laid out in the region (a reflectively loaded image)
    pe_header: bool = True


@dataclass(frozen=True)
class ThreadSpec:
    tid: int
    count: int = 1
    stack: tuple[str, ...] = ()
    stack32: tuple[str, ...] = ()
    state: str = "Waiting"
    wait_reason: str = "UserRequest"
    syscall: str | int | None = None
    encoding: str = "4c8bd1b8"
    created: dt.datetime | None = None
    start: str | None = None
    args: tuple[tuple[str, object], ...] = ()
    impersonating: str | None = None
    stack_in: str | None = None  # a region the thread's stack is laid out in (RSP outside the TEB's stack)
    fiber: str | None = None  # a region that is the stack of the fiber the thread runs
    where: str = ""
    implants: ThreadImplantSpec = ThreadImplantSpec()  # debug registers, queued APCs, alertable wait


@dataclass(frozen=True)
class ProcessSpec:
    pid: int
    name: str
    ppid: int = 0
    path: str | None = None
    image: str | None = None
    command_line: str | None = None
    kernel: bool = False
    session: int | None = None
    user: str | None = None
    created: dt.datetime | None = None
    wow64: bool = False
    fork_of: int | None = None
    handles: int | None = None
    modules: tuple[str, ...] | None = None
    modules32: tuple[str, ...] | None = None
    module_details: tuple[ModuleSpec, ...] = ()
    regions: tuple[RegionSpec, ...] = ()
    threads: tuple[ThreadSpec, ...] = ()
    system_threads: int = 0
    thread_init: str = "kernel32.dll"
    env: tuple[tuple[str, str], ...] = ()
    signature_level: int | None = None
    where: str = ""


@dataclass(frozen=True)
class Scenario:
    path: Path
    title: str
    description: str
    expect: tuple[str, ...]
    time: dt.datetime
    boot: dt.datetime
    processors: int
    processes: tuple[ProcessSpec, ...] = field(default=())
    # COMPUTERNAME in every user process's environment, as Windows sets it; None leaves it out.
    computer_name: str | None = None

    @property
    def name(self) -> str:
        return self.path.stem


# ---- loading ----------------------------------------------------------------------------

COMPUTER_NAME_MAX = 15  # NetBIOS: Windows refuses a longer computer name


def computer_name_problem(value: str) -> str | None:
    """Why ``value`` cannot be a Windows computer name (1-15 printable characters, none of
    space = \\ / : * ? " < > |), or None when it can."""
    if not 1 <= len(value) <= COMPUTER_NAME_MAX or not value.isprintable() or any(c in value for c in ' =\\/:*?"<>|'):
        return (f"{value!r} is not a Windows computer name (1 to {COMPUTER_NAME_MAX} characters, "
                'no spaces and none of = \\ / : * ? " < > |)')
    return None


def load_scenario(path: str | Path, with_base: bool = True) -> Scenario:
    """Read a scenario file, merged with the base system it sits on (see ``basesystem``)."""
    path = Path(path)
    raw = _read_toml(path)
    reader = _Reader(path)
    scenario = reader.scenario(raw)
    name = reader.base_name(raw)
    if not with_base or name == NO_BASE:
        return scenario
    found = base_path(name, path)
    if found is None:
        raise ScenarioError(f"{path.name}: [system].base: no base system '{name}' (looked in {path.parent / 'base'} "
                            f"and {default_base_dir()}); name one there or write base = \"none\"")
    if found.resolve() == path.resolve():
        return scenario
    base = load_scenario(found, with_base=False)
    processes = merge(scenario.processes, base.processes, name)
    reader.check_processes(processes)
    return replace(scenario, processes=processes)


def _read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from exc


class _Reader:
    """Typed access to TOML tables with errors that say where."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.templates: dict[str, dict] = {}

    def fail(self, where: str, message: str) -> ScenarioError:
        return ScenarioError(f"{self.path.name}: {where}: {message}")

    def keys(self, table: dict, allowed: set[str], where: str) -> None:
        for key in table:
            if key not in allowed:
                close = difflib.get_close_matches(key, sorted(allowed), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else f" (allowed: {', '.join(sorted(allowed))})"
                raise self.fail(where, f"unknown key '{key}'{hint}")

    def get(self, table: dict, key: str, kind: type | tuple, where: str, default: Any = None, required=False):
        if key not in table:
            if required:
                raise self.fail(where, f"missing required key '{key}'")
            return default
        value = table[key]
        if kind is int and isinstance(value, str):
            try:
                value = int(value, 0)
            except ValueError:
                raise self.fail(f"{where}.{key}", f"expected an integer, got {value!r}") from None
        if isinstance(value, bool) and kind is int:
            raise self.fail(f"{where}.{key}", f"expected an integer, got {value!r}")
        if not isinstance(value, kind):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.fail(f"{where}.{key}", f"expected {names}, got {type(value).__name__} {value!r}")
        return value

    def when(self, table: dict, key: str, where: str, default: dt.datetime | None) -> dt.datetime | None:
        value = table.get(key)
        if value is None:
            return default
        if isinstance(value, str):
            try:
                value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise self.fail(f"{where}.{key}", f"not a date-time: {value!r}") from None
        if isinstance(value, dt.datetime):
            return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
        raise self.fail(f"{where}.{key}", "expected a date-time like 2024-05-14T10:22:31Z")

    def strings(self, table: dict, key: str, where: str) -> tuple[str, ...] | None:
        value = self.get(table, key, list, where)
        if value is None:
            return None
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise self.fail(f"{where}.{key}[{i}]", f"expected a string, got {item!r}")
        return tuple(value)

    # ---- sections ----------------------------------------------------------------------

    def scenario(self, raw: dict) -> Scenario:
        self.keys(raw, {"title", "description", "expect", "system", "process", "templates"}, "top level")
        self.templates = self.get(raw, "templates", dict, "top level", {})
        for name, template in self.templates.items():
            if not isinstance(template, dict):
                raise self.fail(f"[templates.{name}]", "expected a table of thread keys")
            self.keys(template, self.THREAD_KEYS - {"tid", "count", "like"}, f"[templates.{name}]")
        expect = self.strings(raw, "expect", "top level")
        if expect is None:
            raise self.fail("top level", "missing required key 'expect' (the rules that must fire; [] for none)")
        system = self.get(raw, "system", dict, "top level", {})
        self.keys(system, {"time", "boot", "processors", "base", "computer_name"}, "[system]")
        time = self.when(system, "time", "[system]", DEFAULT_TIME)
        assert time is not None
        boot = self.when(system, "boot", "[system]", time - dt.timedelta(hours=2, minutes=24))
        assert boot is not None
        if boot > time:
            raise self.fail("[system].boot", "is after [system].time")
        processes = self.get(raw, "process", list, "top level", required=True)
        specs = tuple(self.process(p, f"process[{i}]") for i, p in enumerate(processes))
        self.check_processes(specs)
        return Scenario(self.path, self.get(raw, "title", str, "top level", self.path.stem),
                        self.get(raw, "description", str, "top level", ""), expect, time, boot,
                        self.get(system, "processors", int, "[system]", 4), specs,
                        self.computer_name(system))

    def computer_name(self, system: dict) -> str | None:
        name = self.get(system, "computer_name", str, "[system]")
        problem = computer_name_problem(name) if name is not None else None
        if problem:
            raise self.fail("[system].computer_name", problem)
        return name

    def base_name(self, raw: dict) -> str:
        system = self.get(raw, "system", dict, "top level", {})
        return self.get(system, "base", str, "[system]", DEFAULT_BASE)

    def process(self, table: Any, where: str) -> ProcessSpec:
        if not isinstance(table, dict):
            raise self.fail(where, "expected a table ([[process]])")
        allowed = {"pid", "ppid", "name", "path", "image", "command_line", "kernel", "session", "user", "created",
                   "wow64", "fork_of", "handles", "modules", "modules32", "module", "region", "thread",
                   "system_threads", "thread_init", "env", "signature_level"}
        name = self.get(table, "name", str, where, required=True)
        where = f"{where} ({name})"
        self.keys(table, allowed, where)
        pid = self.get(table, "pid", int, where, required=True)
        if pid % 4 or pid <= 0:
            raise self.fail(f"{where}.pid", f"{pid} is not a Windows process id (a positive multiple of 4)")
        env = self.get(table, "env", dict, where, {})
        for key, value in env.items():
            if not isinstance(value, str):
                raise self.fail(f"{where}.env.{key}", "expected a string")
        return ProcessSpec(
            pid=pid, name=name,
            ppid=self.get(table, "ppid", int, where, 0),
            path=self.get(table, "path", str, where),
            image=self.get(table, "image", str, where),
            command_line=self.get(table, "command_line", str, where),
            kernel=self.get(table, "kernel", bool, where, False),
            session=self.get(table, "session", int, where),
            user=self.get(table, "user", str, where),
            created=self.when(table, "created", where, None),
            wow64=self.get(table, "wow64", bool, where, False),
            fork_of=self.get(table, "fork_of", int, where),
            handles=self.get(table, "handles", int, where),
            modules=self.strings(table, "modules", where),
            modules32=self.strings(table, "modules32", where),
            module_details=tuple(self.module(m, f"{where}.module[{i}]")
                                 for i, m in enumerate(self.get(table, "module", list, where, []))),
            regions=tuple(self.region(r, f"{where}.region[{i}]")
                          for i, r in enumerate(self.get(table, "region", list, where, []))),
            threads=tuple(self.thread(t, f"{where}.thread[{i}]", (table.get("image") or name).lower())
                          for i, t in enumerate(self.get(table, "thread", list, where, []))),
            system_threads=self.get(table, "system_threads", int, where, 0),
            thread_init=self.get(table, "thread_init", str, where, "kernel32.dll"),
            env=tuple(env.items()),
            signature_level=self.signing(table, where),
            where=where,
        )

    def module(self, table: Any, where: str) -> ModuleSpec:
        if not isinstance(table, dict):
            raise self.fail(where, "expected a table ([[process.module]])")
        self.keys(table, {"name", "arch", "base", "path", "linked", "signing_level"} | implants.MODULE_KEYS, where)
        arch = self.get(table, "arch", str, where, "x64")
        if arch not in ("x64", "x86"):
            raise self.fail(f"{where}.arch", f"expected 'x64' or 'x86', got {arch!r}")
        return ModuleSpec(self.get(table, "name", str, where, required=True), arch,
                          self.get(table, "base", int, where), self.get(table, "path", str, where),
                          self.get(table, "linked", bool, where, True), self.signing(table, where),
                          self.implant_keys(implants.module_spec, table, where))

    def implant_keys(self, parse, table: dict, where: str):
        """The implant keys of a table (forge/implants.py), their errors as this file's."""
        try:
            return parse(table, where)
        except ImplantKeyError as exc:
            raise ScenarioError(f"{self.path.name}: {exc}") from None

    def signing(self, table: dict, where: str) -> int | None:
        level = self.get(table, "signing_level", int, where)
        if level is not None and not 0 <= level <= 15:
            raise self.fail(f"{where}.signing_level", "an SE_SIGNING_LEVEL_* value is 0..15 (1 unsigned, 4 "
                            "Authenticode, 8 Microsoft, 12 Windows)")
        return level

    def region(self, table: Any, where: str) -> RegionSpec:
        if not isinstance(table, dict):
            raise self.fail(where, "expected a table ([[process.region]])")
        self.keys(table, {"name", "address", "size", "protection", "kind", "file", "content", "paged_out", "arch",
                          "contexts"} | implants.REGION_KEYS, where)
        name = self.get(table, "name", str, where, required=True)
        where = f"{where} ({name})"
        size = self.get(table, "size", int, where, required=True)
        if size <= 0 or size % 0x1000:
            raise self.fail(f"{where}.size", f"{size:#x} is not a positive multiple of the page size (0x1000)")
        address = self.get(table, "address", int, where)
        if address is not None and (address % 0x1000 or address <= 0 or address + size > 0x7FFFFFFF0000):
            raise self.fail(f"{where}.address", f"{address:#x} is not a page-aligned user-mode address")
        protection = self.get(table, "protection", str, where, "RW-")
        if protection.upper() not in PROTECTIONS:
            raise self.fail(f"{where}.protection", f"unknown protection {protection!r} (use RWX, R-X, RW-, R--, "
                            "---, or a PAGE_* name)")
        kind = self.get(table, "kind", str, where, "private")
        if kind not in KINDS:
            raise self.fail(f"{where}.kind", f"expected one of {', '.join(KINDS)}, got {kind!r}")
        file = self.get(table, "file", str, where)
        if kind != "private" and not file:
            raise self.fail(where, f"a {kind} region needs `file` (the path of the file it maps)")
        paged = self.get(table, "paged_out", list, where, [])
        for i, offset in enumerate(paged):
            if not isinstance(offset, int) or offset % 0x1000 or not 0 <= offset < size:
                raise self.fail(f"{where}.paged_out[{i}]", f"{offset!r} is not a page offset inside the region")
        content = self.content(table.get("content"), f"{where}.content")
        if len(content) > size:
            raise self.fail(f"{where}.content", f"{len(content):#x} bytes do not fit in {size:#x}")
        pe, pe_header = self.implant_keys(implants.region_pe, table, where)
        return RegionSpec(name, size, address, PROTECTIONS[protection.upper()], kind, file, content, tuple(paged),
                          self.get(table, "arch", str, where, "x64"), self.contexts(table, where), pe, pe_header)

    def contexts(self, table: dict, where: str) -> tuple[tuple[str, int], ...]:
        """``contexts = [{rip = "ntdll.dll!NtContinue", thread = 4124}, ...]``."""
        out = []
        for i, item in enumerate(self.get(table, "contexts", list, where, [])):
            here = f"{where}.contexts[{i}]"
            if not isinstance(item, dict):
                raise self.fail(here, "expected a table {rip = \"module!Function\", thread = TID}")
            self.keys(item, {"rip", "thread"}, here)
            out.append((self.get(item, "rip", str, here, required=True), self.get(item, "thread", int, here, required=True)))
        return tuple(out)

    def content(self, value: Any, where: str) -> bytes:
        if value is None:
            return b""
        if isinstance(value, str):
            value = {"hex": value}
        if not isinstance(value, dict) or len(value) != 1:
            raise self.fail(where, "expected a hex string, or one of {hex = ...}, {text = ...}, {file = ...}")
        (kind, data), = value.items()
        if kind == "hex":
            try:
                return bytes.fromhex("".join(str(data).split()))
            except ValueError:
                raise self.fail(where, f"not hex: {data!r}") from None
        if kind == "text":
            return str(data).encode("utf-8")
        if kind == "file":
            source = (self.path.parent / str(data)).resolve()
            try:
                return source.read_bytes()
            except OSError as exc:
                raise self.fail(where, f"cannot read {source}: {exc.strerror}") from exc
        raise self.fail(where, f"unknown content kind '{kind}' (hex, text, file)")

    THREAD_KEYS = {"tid", "count", "stack", "stack32", "state", "wait_reason", "syscall", "encoding", "created",
                   "start", "args", "impersonating", "like", "stack_in", "fiber"} | implants.THREAD_KEYS

    def thread(self, table: Any, where: str, exe: str = "") -> ThreadSpec:
        if not isinstance(table, dict):
            raise self.fail(where, "expected a table ([[process.thread]])")
        self.keys(table, self.THREAD_KEYS, where)
        if "like" in table:
            name = self.get(table, "like", str, where)
            if name not in self.templates:
                close = difflib.get_close_matches(name, sorted(self.templates), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise self.fail(f"{where}.like", f"no template '{name}' in [templates]{hint}")
            table = {**self.templates[name], **{k: v for k, v in table.items() if k != "like"}}
        table = {k: _expand(v, exe) for k, v in table.items()}
        tid = self.get(table, "tid", int, where, required=True)
        if tid % 4 or tid <= 0:
            raise self.fail(f"{where}.tid", f"{tid} is not a Windows thread id (a positive multiple of 4)")
        count = self.get(table, "count", int, where, 1)
        if count < 1:
            raise self.fail(f"{where}.count", "must be at least 1")
        syscall = table.get("syscall")
        if syscall is not None and not isinstance(syscall, (str, int)):
            raise self.fail(f"{where}.syscall", "expected a system call name (NtCreateUserProcess) or number")
        return ThreadSpec(
            tid=tid, count=count,
            stack=self.strings(table, "stack", where) or (),
            stack32=self.strings(table, "stack32", where) or (),
            state=self.get(table, "state", str, where, "Waiting"),
            wait_reason=self.get(table, "wait_reason", str, where, "UserRequest"),
            syscall=syscall,
            encoding=self.get(table, "encoding", str, where, "4c8bd1b8"),
            created=self.when(table, "created", where, None),
            start=self.get(table, "start", str, where),
            args=tuple(self.get(table, "args", dict, where, {}).items()),
            impersonating=self.get(table, "impersonating", str, where),
            stack_in=self.get(table, "stack_in", str, where),
            fiber=self.get(table, "fiber", str, where),
            where=where,
            implants=self.implant_keys(implants.thread_spec, table, where),
        )

    def check_processes(self, specs: tuple[ProcessSpec, ...]) -> None:
        pids: dict[int, str] = {}
        tids: dict[int, str] = {}
        for spec in specs:
            if spec.pid in pids:
                raise self.fail(spec.where, f"pid {spec.pid} is also used by {pids[spec.pid]}")
            pids[spec.pid] = spec.where
            if spec.fork_of is not None and spec.fork_of not in {s.pid for s in specs}:
                raise self.fail(f"{spec.where}.fork_of", f"no process with pid {spec.fork_of}")
            names = [r.name for r in spec.regions]
            duplicate = next((n for n in names if names.count(n) > 1), None)
            if duplicate:
                raise self.fail(spec.where, f"two regions are named '{duplicate}'")
            for thread in spec.threads:
                for n in range(thread.count):
                    tid = thread.tid + 4 * n
                    if tid in tids:
                        raise self.fail(thread.where, f"tid {tid} is also used by {tids[tid]}")
                    tids[tid] = thread.where
                if not spec.kernel and not thread.stack and not thread.stack32:
                    raise self.fail(thread.where, "a user thread needs `stack` (its frames, innermost first)")
        clash = sorted(set(pids) & set(tids))
        if clash:
            raise self.fail(tids[clash[0]], f"tid {clash[0]} is also a process id (Windows numbers processes and "
                            "threads from one table)")


def _expand(value: Any, exe: str) -> Any:
    """``{exe}`` in a frame name stands for the process's own executable (templates shared by processes)."""
    if isinstance(value, str):
        return value.replace("{exe}", exe)
    if isinstance(value, list):
        return [_expand(v, exe) for v in value]
    return value
