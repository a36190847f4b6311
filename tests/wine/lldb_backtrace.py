"""Every thread's backtrace in a minidump, as LLDB unwinds it; JSON on stdout.

Run by tests/wine/lldb_reference.py under the system Python (the one Debian's
python3-lldb is built for), never imported by the project:

    python3 lldb_backtrace.py DUMP --search DIR [--search DIR ...] --work DIR [--resolve ADDRESSES.json]

Output: ``{"version", "modules": [{"name", "path", "found", "base", "end"}],
"threads": {tid: [{"pc", "sp", "cfa", "functions", "module"}]},
"stops": {tid: {"frame", "message", "pc", "cfa", "return_slot"} | null},
"resolved": {address: {"start", "name"}}}``. ``threads`` has one
entry per *physical* frame: LLDB lists an inlined function as a frame of its
own (``SBFrame.IsInlined``), whose pc is the start of the inlined block, not a
return address; those fold into the physical frame that holds them, whose pc
is the first of the group's, and ``functions`` names them all, innermost first.
``stops`` is why LLDB ended each backtrace, in
its own words: its unwind log (``log enable lldb unwind``) names the frame it
could not accept and why ("did not get a valid CFA", "invalid
RegisterContext"), with the pc and CFA it had computed for that frame and the
8 bytes at CFA-8, where it looked for that frame's return address; null when
the log names no failure (the walk reached the end of the stack). ``resolved`` gives, for each
address listed in ADDRESSES.json, where LLDB takes its function to start (the
DWARF function, else the symbol: what LLDB subtracts from a pc before it reads
the unwind rows), so that a caller can tell where LLDB's unwinding must go
wrong, also for frames LLDB never shows. On failure: ``{"error": "..."}`` and
exit status 1.

Two workarounds, both for Debian's packaging, not for LLDB's unwinding:

* **Importing lldb.** python3-lldb-14 ships ``lldb/_lldb.*.so`` as a link to
  ``../../../../../lib/liblldb.so``, a file only liblldb-14-dev provides (and
  ``lldb -P`` names a directory that does not exist). When ``import lldb``
  fails, a copy of the package is built under ``--work``: real directories,
  links to its files, and ``_lldb.*.so`` pointing at the shared library that
  is installed (``liblldb-14.so.1``).
* **Module files.** LLDB finds a module by the file name the dump records,
  exactly: ``C:\\windows\\system32\\USER32.dll`` is not ``user32.dll`` on a
  case-sensitive file system, and without the file LLDB has no .pdata and
  unwinds nothing past it. Each module not found under ``--search`` is linked
  under ``--work/modules`` by its recorded name to the file whose name matches
  case-insensitively, and the dump is loaded again.
"""

from __future__ import annotations

import glob
import json
import os
import re
import sys

_STOP = re.compile(r"Frame (\d+) (.*), stopping stack walk")
_THREAD_FRAME = re.compile(r"\bth(\d+)/fr(\d+) (.*)$")
_CFA = re.compile(r"^CFA is (0x[0-9a-fA-F]+)")
_PC = re.compile(r"^with pc value of (0x[0-9a-fA-F]+)")


def _mirror(source: str, target: str) -> None:
    """``target`` as a tree of real directories whose files link to ``source``'s: no link to a
    directory, so nothing that walks the build tree following links is led out of it."""
    for root, _dirs, files in os.walk(source):
        here = os.path.join(target, os.path.relpath(root, source))
        os.makedirs(here, exist_ok=True)
        for name in files:
            link = os.path.join(here, name)
            if os.path.lexists(link):
                os.unlink(link)
            os.symlink(os.path.join(root, name), link)


def _shim_package(work: str) -> str | None:
    """A directory from which ``import lldb`` works, built from Debian's package; None when none fits."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for package in sorted(glob.glob(f"/usr/lib/llvm-*/lib/{version}/dist-packages/lldb"), reverse=True):
        llvm = package.split("/")[3]  # llvm-14
        libraries = [
            path
            for pattern in (f"/usr/lib/*/liblldb-{llvm[5:]}.so*", f"/usr/lib/{llvm}/lib/liblldb.so*")
            for path in sorted(glob.glob(pattern))
            if os.path.exists(path)
        ]
        if not libraries:
            continue
        shim = os.path.join(work, "python", llvm, "lldb")
        _mirror(package, shim)
        binding = next(e for e in os.listdir(shim) if e.startswith("_lldb") and e.endswith(".so"))
        os.unlink(os.path.join(shim, binding))
        os.symlink(libraries[0], os.path.join(shim, binding))
        return os.path.dirname(shim)
    return None


def import_lldb(work: str):
    """The lldb module: as installed when it works, else through the copy built by _shim_package."""
    try:
        import lldb  # noqa: PLC0415 - the module exists only on some interpreters

        if hasattr(lldb, "SBDebugger"):
            return lldb
        del sys.modules["lldb"]  # the bare namespace Debian's layout leaves (no __init__.py)
    except ImportError:
        pass
    path = _shim_package(work)
    if path is None:
        raise ImportError(f"no usable lldb Python package for Python {sys.version.split()[0]}")
    sys.path.insert(0, path)
    import lldb  # noqa: PLC0415

    return lldb


def _load(lldb, debugger, dump: str, search: list[str]):
    interpreter = debugger.GetCommandInterpreter()
    result = lldb.SBCommandReturnObject()
    quoted = " ".join(f'"{d}"' for d in search)
    interpreter.HandleCommand(f"settings set target.exec-search-paths {quoted}", result)
    if not result.Succeeded():
        raise RuntimeError(f"settings set target.exec-search-paths: {result.GetError()}")
    target = debugger.CreateTarget("")
    error = lldb.SBError()
    process = target.LoadCore(dump, error)
    if not error.Success() or not process.IsValid():
        raise RuntimeError(f"loading {dump}: {error.GetCString()}")
    return target, process


def _recorded_name(module) -> str:
    """The module's file name as the dump records it (a Windows path when LLDB found no file)."""
    return module.GetFileSpec().GetFilename() or ""


def _found(module) -> bool:
    spec = module.GetFileSpec()
    return bool(spec.GetDirectory()) and os.path.isfile(os.path.join(spec.GetDirectory(), spec.GetFilename()))


def _alias_missing(target, search: list[str], aliases: str) -> int:
    """Links each module LLDB did not find to the file that matches its name case-insensitively."""
    by_lower = {}
    for directory in search:
        for entry in sorted(os.listdir(directory)):
            by_lower.setdefault(entry.lower(), os.path.join(directory, entry))
    made = 0
    for module in target.module_iter():
        name = _recorded_name(module)
        if _found(module) or name.lower() not in by_lower:
            continue
        os.makedirs(aliases, exist_ok=True)
        link = os.path.join(aliases, name)
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(by_lower[name.lower()], link)
        made += 1
    return made


def _module_record(lldb, target, module) -> dict:
    base = module.GetObjectFileHeaderAddress().GetLoadAddress(target)
    ends = [
        section.GetLoadAddress(target) + section.GetByteSize()
        for section in module.section_iter()
        if section.GetLoadAddress(target) != lldb.LLDB_INVALID_ADDRESS
    ]
    spec = module.GetFileSpec()
    path = os.path.join(spec.GetDirectory() or "", spec.GetFilename() or "")
    return {"name": _recorded_name(module), "path": path, "found": _found(module), "base": base,
            "end": max(ends, default=base)}


def _physical_frames(thread) -> list[dict]:
    frames, group = [], []
    for frame in thread:
        group.append(frame)
        if frame.IsInlined():
            continue
        module = frame.GetModule()
        frames.append({
            "pc": group[0].GetPC(),
            "sp": frame.GetSP(),
            "cfa": frame.GetCFA(),
            "functions": [f.GetFunctionName() or "" for f in group],
            "module": _recorded_name(module) if module.IsValid() else None,
        })
        group = []
    return frames


def _resolve(lldb, target, addresses: list[int]) -> dict:
    out = {}
    for address in addresses:
        resolved = target.ResolveLoadAddress(address)
        function, symbol = resolved.GetFunction(), resolved.GetSymbol()
        holder = function if function.IsValid() else symbol if symbol.IsValid() else None
        if holder is None:
            out[str(address)] = {"start": None, "name": None}
            continue
        start = holder.GetStartAddress().GetLoadAddress(target)
        out[str(address)] = {"start": None if start == lldb.LLDB_INVALID_ADDRESS else start, "name": holder.GetName()}
    return out


def _stops(log_text: str) -> dict[int, dict]:
    """Per LLDB thread index: the last frame the unwind log says it gave up on, its message, pc and CFA."""
    last: dict[int, dict] = {}
    seen: dict[tuple[int, int], dict] = {}
    current = None
    for line in log_text.splitlines():
        tagged = _THREAD_FRAME.search(line)
        if tagged:
            current = int(tagged[1])
            facts = seen.setdefault((current, int(tagged[2])), {})
            for key, pattern in (("cfa", _CFA), ("pc", _PC)):
                match = pattern.match(tagged[3])
                if match:
                    facts[key] = int(match[1], 16)
            continue
        stop = _STOP.search(line)
        if stop and current is not None:
            frame = int(stop[1])
            last[current] = {"frame": frame, "message": stop[2].strip(), **seen.get((current, frame), {})}
    return last


def _return_slot(lldb, process, cfa: int | None) -> int | None:
    if cfa is None:
        return None
    error = lldb.SBError()
    value = process.ReadPointerFromMemory(cfa - 8, error)
    return value if error.Success() else None


def _unwind_all(lldb, debugger, process, log_path: str) -> tuple[dict, dict]:
    """Every thread's physical frames, and why each walk stopped (from LLDB's unwind log)."""
    interpreter = debugger.GetCommandInterpreter()
    result = lldb.SBCommandReturnObject()
    interpreter.HandleCommand(f'log enable -f "{log_path}" lldb unwind', result)
    frames = {t.GetThreadID(): _physical_frames(t) for t in process}
    interpreter.HandleCommand("log disable lldb unwind", result)  # closes (and flushes) the log file
    with open(log_path, errors="replace") as log:
        by_index = _stops(log.read())
    stops = {}
    for thread in process:
        stop = by_index.get(thread.GetIndexID())
        if stop is not None:
            stop = {"pc": None, "cfa": None, **stop}
            stop["return_slot"] = _return_slot(lldb, process, stop["cfa"])
        stops[str(thread.GetThreadID())] = stop
    return {str(tid): f for tid, f in frames.items()}, stops


def backtraces(dump: str, search: list[str], work: str, addresses: list[int]) -> dict:
    lldb = import_lldb(work)
    debugger = lldb.SBDebugger.Create(False)
    debugger.SetAsync(False)
    try:
        aliases = os.path.join(work, "modules", os.path.basename(os.path.dirname(os.path.abspath(dump))))
        target, process = _load(lldb, debugger, dump, search)
        if _alias_missing(target, search, aliases):
            debugger.DeleteTarget(target)
            target, process = _load(lldb, debugger, dump, [aliases, *search])
        log_path = os.path.join(work, f"unwind-{os.path.basename(os.path.dirname(os.path.abspath(dump)))}.log")
        threads, stops = _unwind_all(lldb, debugger, process, log_path)
        return {
            "version": lldb.SBDebugger.GetVersionString(),
            "modules": [_module_record(lldb, target, m) for m in target.module_iter()],
            "threads": threads,
            "stops": stops,
            "resolved": _resolve(lldb, target, addresses),
        }
    finally:
        lldb.SBDebugger.Destroy(debugger)


def main(argv: list[str]) -> int:
    dump, search, work, resolve = None, [], None, None
    args = iter(argv)
    for arg in args:
        if arg == "--search":
            search.append(next(args))
        elif arg == "--work":
            work = next(args)
        elif arg == "--resolve":
            resolve = next(args)
        else:
            dump = arg
    if dump is None or work is None:
        print(json.dumps({"error": "usage: lldb_backtrace.py DUMP --search DIR... --work DIR [--resolve FILE]"}))
        return 1
    try:
        addresses = []
        if resolve:
            with open(resolve) as request:
                addresses = json.load(request)
        result = backtraces(dump, search, work, addresses)
    except (ImportError, RuntimeError, OSError, ValueError) as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
