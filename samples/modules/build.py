#!/usr/bin/env python3
"""Build the fake-but-real Windows modules the forge maps into its images.

Every module is compiled by mingw-w64 from the C and assembly sources in src/
(x64 with the compiler's .pdata/.xdata unwind data; x86 with frame pointers,
for WOW64 processes), linked against the modules it imports, given a fixed
image base and timestamp, and written to bin/<arch>/. catalog.json then lists
each module's file, Windows install path, image base and every function's RVA
(exported or not), which is what the forge's stack composer reads.

Usage: python3 samples/modules/build.py [--check]   (--check: rebuild in a temp dir and compare)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"
SYS32 = "C:\\Windows\\System32\\"
WOW = "C:\\Windows\\SysWOW64\\"

CFLAGS = [
    "-O2", "-std=gnu11", "-ffreestanding", "-fno-builtin", "-fno-stack-protector",
    "-fno-optimize-sibling-calls",      # a call stays a call: return addresses follow real call instructions
    "-fno-toplevel-reorder", "-fno-reorder-functions",  # functions laid out in source order
    "-fno-tree-loop-distribute-patterns", "-fno-ident", "-Wall", "-Wno-unused-function",
]
ARCH_FLAGS = {
    "x64": ["-fasynchronous-unwind-tables"],
    "x86": ["-fno-omit-frame-pointer", "-mno-sse"],
}
COMPILERS = {"x64": "x86_64-w64-mingw32-gcc", "x86": "i686-w64-mingw32-gcc"}
WINDRES = {"x64": "x86_64-w64-mingw32-windres", "x86": "i686-w64-mingw32-windres"}
NM = {"x64": "x86_64-w64-mingw32-nm", "x86": "i686-w64-mingw32-nm"}


@dataclass(frozen=True)
class Module:
    name: str
    arch: str
    sources: tuple[str, ...]
    base: int
    path: str
    imports: tuple[str, ...] = ()
    defines: tuple[str, ...] = ()
    stubs: str | None = None  # module name in syscalls.txt whose stubs this module carries
    signing_level: int = 12   # SE_SIGNING_LEVEL_* Code Integrity records for it: 12 Windows, 8 Microsoft, 1 unsigned
    tail: tuple[str, ...] = ()  # sources linked after the stubs: added functions move none of the others

    @property
    def is_exe(self) -> bool:
        return self.name.endswith(".exe")


EXECUTABLES = {
    # name: Windows path
    "smss.exe": SYS32 + "smss.exe", "csrss.exe": SYS32 + "csrss.exe", "wininit.exe": SYS32 + "wininit.exe",
    "winlogon.exe": SYS32 + "winlogon.exe", "services.exe": SYS32 + "services.exe", "lsass.exe": SYS32 + "lsass.exe",
    "svchost.exe": SYS32 + "svchost.exe", "fontdrvhost.exe": SYS32 + "fontdrvhost.exe", "dwm.exe": SYS32 + "dwm.exe",
    "sihost.exe": SYS32 + "sihost.exe", "taskhostw.exe": SYS32 + "taskhostw.exe", "ctfmon.exe": SYS32 + "ctfmon.exe",
    "explorer.exe": "C:\\Windows\\explorer.exe", "runtimebroker.exe": SYS32 + "RuntimeBroker.exe",
    "notepad.exe": SYS32 + "notepad.exe", "spoolsv.exe": SYS32 + "spoolsv.exe",
    "wmiprvse.exe": SYS32 + "wbem\\WmiPrvSE.exe", "cmd.exe": SYS32 + "cmd.exe", "wscript.exe": SYS32 + "wscript.exe",
    "werfault.exe": SYS32 + "WerFault.exe", "conhost.exe": SYS32 + "conhost.exe",
    "powershell.exe": SYS32 + "WindowsPowerShell\\v1.0\\powershell.exe",
    "winword.exe": "C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE",
    "searchindexer.exe": SYS32 + "SearchIndexer.exe", "msmpeng.exe": "C:\\ProgramData\\Microsoft\\Windows Defender\\"
    "Platform\\4.18.24010.12-0\\MsMpEng.exe",
}


def modules() -> list[Module]:
    core = ("ntdll.dll",)
    win = ("ntdll.dll", "kernelbase.dll")
    mods = [
        Module("ntdll.dll", "x64", ("ntdll.c",), 0x7FFBC5A20000, SYS32 + "ntdll.dll", stubs="ntdll",
               tail=("ntdll_tail.c",)),
        Module("kernelbase.dll", "x64", ("kernelbase.c",), 0x7FFBC2F10000, SYS32 + "KernelBase.dll", core),
        Module("kernel32.dll", "x64", ("kernel32.c",), 0x7FFBC3E40000, SYS32 + "kernel32.dll", win,
               tail=("kernel32_thunks.S",)),
        Module("win32u.dll", "x64", (), 0x7FFBC2A50000, SYS32 + "win32u.dll", stubs="win32u"),
        Module("user32.dll", "x64", ("user32.c",), 0x7FFBC4C60000, SYS32 + "user32.dll", ("win32u.dll",)),
        Module("sechost.dll", "x64", ("sechost.c",), 0x7FFBC4B00000, SYS32 + "sechost.dll", win),
        Module("advapi32.dll", "x64", ("advapi32.c",), 0x7FFBC45A0000, SYS32 + "advapi32.dll",
               ("kernelbase.dll", "sechost.dll")),
        Module("rpcrt4.dll", "x64", ("rpcrt4.c",), 0x7FFBC38C0000, SYS32 + "rpcrt4.dll", win),
        Module("ole32.dll", "x64", ("ole32.c",), 0x7FFBC5050000, SYS32 + "ole32.dll", win),
        Module("shell32.dll", "x64", ("shell32.c",), 0x7FFBC1A00000, SYS32 + "shell32.dll",
               ("kernel32.dll", "user32.dll")),
        Module("zipfld.dll", "x64", ("zipfld.c",), 0x7FFB9B3D0000, SYS32 + "zipfld.dll", ("shell32.dll",)),
        Module("ubpm.dll", "x64", ("ubpm.c",), 0x7FFBB2C10000, SYS32 + "ubpm.dll", ("kernelbase.dll",)),
        Module("wbemcons.dll", "x64", ("wbemcons.c",), 0x7FFBA0E20000, SYS32 + "wbem\\wbemcons.dll",
               ("kernel32.dll",)),
        Module("cimwin32.dll", "x64", ("cimwin32.c",), 0x7FFBA0A80000, SYS32 + "wbem\\cimwin32.dll",
               ("kernel32.dll",)),
        Module("regsvc.dll", "x64", ("regsvc.c",), 0x7FFBA77E0000, SYS32 + "regsvc.dll",
               ("kernelbase.dll", "rpcrt4.dll")),
        Module("localspl.dll", "x64", ("localspl.c",), 0x7FFBA54B0000, SYS32 + "localspl.dll", ("kernelbase.dll",)),
        Module("faultrep.dll", "x64", ("faultrep.c",), 0x7FFBB8D10000, SYS32 + "faultrep.dll", core),
        Module("wersvc.dll", "x64", ("wersvc.c",), 0x7FFBA9C20000, SYS32 + "wersvc.dll",
               ("faultrep.dll", "rpcrt4.dll")),
        Module("netsvcx.dll", "x64", ("netsvcx.c",), 0x7FFB98700000, SYS32 + "netsvcx.dll", ("kernelbase.dll",),
               signing_level=1),
        Module("logsvc.dll", "x64", ("logsvc.c",), 0x7FFB98200000, SYS32 + "logsvc.dll", ("kernelbase.dll",)),
        Module("evilmon.dll", "x64", ("evilmon.c",), 0x7FFB97510000, SYS32 + "evilmon.dll", ("kernel32.dll",),
               signing_level=1),
        Module("k32hook.dll", "x64", ("k32hook.c",), 0x7FFB96500000, "C:\\Users\\Public\\k32hook.dll", core,
               signing_level=1),
        Module("ws2_32.dll", "x64", ("ws2_32.c",), 0x7FFBC4F00000, SYS32 + "ws2_32.dll", win),
        Module("amsi.dll", "x64", ("amsi.c",), 0x7FFBB0E00000, SYS32 + "amsi.dll", core),
        Module("beacon.dll", "x64", ("beacon.c",), 0x180000000, "C:\\Users\\Public\\beacon.dll", ("kernelbase.dll",),
               signing_level=1),
        Module("wow64.dll", "x64", ("wow64.c",), 0x7FFBC27B0000, SYS32 + "wow64.dll", core),
        Module("wow64cpu.dll", "x64", ("wow64cpu.c", "wow64cpu_x86.S"), 0x77A40000, SYS32 + "wow64cpu.dll",
               ("wow64.dll",)),
        Module("wow64win.dll", "x64", ("wow64win.c",), 0x7FFBC20E0000, SYS32 + "wow64win.dll", ("win32u.dll",)),
        # 32-bit modules of WOW64 processes (frame-pointer chains, no .pdata on x86)
        Module("ntdll.dll", "x86", ("ntdll.c",), 0x77BA0000, WOW + "ntdll.dll", stubs="ntdll"),
        Module("kernelbase.dll", "x86", ("kernelbase.c",), 0x75E20000, WOW + "KernelBase.dll", core),
        Module("kernel32.dll", "x86", ("kernel32.c",), 0x76140000, WOW + "kernel32.dll", win),
        Module("win32u.dll", "x86", (), 0x76DC0000, WOW + "win32u.dll", stubs="win32u"),
        Module("user32.dll", "x86", ("user32.c",), 0x76E80000, WOW + "user32.dll", ("win32u.dll",)),
        Module("legacyapp.exe", "x86", ("hostexe.c",), 0x00400000,
               "C:\\Program Files (x86)\\Legacy\\legacyapp.exe",
               ("user32.dll", "kernelbase.dll", "kernel32.dll"), ('EXE_NAME="legacyapp.exe"',), signing_level=4),
    ]
    levels = {"winword.exe": 8, "msmpeng.exe": 7}  # Office is Microsoft-signed, Defender antimalware-signed
    for i, (name, path) in enumerate(sorted(EXECUTABLES.items())):
        mods.append(Module(name, "x64", ("hostexe.c",), 0x7FF640000000 + i * 0x02000000, path,
                           ("user32.dll", "kernelbase.dll", "kernel32.dll"), (f'EXE_NAME="{name}"',),
                           signing_level=levels.get(name, 12)))
    return mods


# ---- version resources ----------------------------------------------------------------------------

WINDOWS_VERSION = (10, 0, 19041, 3570)
WINDOWS_PRODUCT = "Microsoft\u00ae Windows\u00ae Operating System"
# name: (FileDescription, OriginalFilename) as Windows 10 22H2's own files carry them
DESCRIPTIONS = {
    "ntdll.dll": ("NT Layer DLL", "ntdll.dll"), "kernelbase.dll": ("Windows NT BASE API Client DLL", "Kernelbase.dll"),
    "kernel32.dll": ("Windows NT BASE API Client DLL", "kernel32"), "win32u.dll": ("Win32u", "Win32u.dll"),
    "user32.dll": ("Multi-User Windows USER API Client DLL", "user32"), "sechost.dll": ("Host for SCM/SDDL/LSA Lookup APIs", "sechost.dll"),
    "advapi32.dll": ("Advanced Windows 32 Base API", "advapi32.dll"), "rpcrt4.dll": ("Remote Procedure Call Runtime", "rpcrt4.dll"),
    "ole32.dll": ("Microsoft OLE for Windows", "OLE32.DLL"), "shell32.dll": ("Windows Shell Common Dll", "SHELL32.dll"),
    "zipfld.dll": ("Compressed (zipped) Folders", "zipfldr.dll"), "ubpm.dll": ("Unified Background Process Manager DLL", "ubpm.dll"),
    "wbemcons.dll": ("WMI Standard Event Consumers", "wbemcons.dll"), "cimwin32.dll": ("WMI Win32 Provider", "cimwin32.dll"),
    "regsvc.dll": ("Remote Registry Service", "regsvc.dll"), "localspl.dll": ("Local Spooler DLL", "localspl.dll"),
    "faultrep.dll": ("Windows User Mode Crash Reporting DLL", "FaultRep.dll"),
    "wersvc.dll": ("Windows Error Reporting Service", "wersvc.dll"), "logsvc.dll": ("Event Logging Service", "logsvc.dll"),
    "ws2_32.dll": ("Windows Socket 2.0 32-Bit DLL", "ws2_32.dll"), "wow64.dll": ("Win32 Emulation on NT64", "wow64.dll"),
    "wow64cpu.dll": ("AMD64 Wow64 CPU", "wow64cpu.dll"), "wow64win.dll": ("Wow64 Console and Win32 API Logging", "wow64win.dll"),
    "smss.exe": ("Windows Session Manager", "smss.exe"), "csrss.exe": ("Client Server Runtime Process", "CSRSS.Exe"),
    "wininit.exe": ("Windows Start-Up Application", "WinInit.exe"), "winlogon.exe": ("Windows Logon Application", "WINLOGON.EXE"),
    "services.exe": ("Services and Controller app", "services.exe"),
    "lsass.exe": ("Local Security Authority Process", "lsass.exe"),
    "svchost.exe": ("Host Process for Windows Services", "svchost.exe"),
    "fontdrvhost.exe": ("Usermode Font Driver Host", "fontdrvhost.exe"), "dwm.exe": ("Desktop Window Manager", "dwm.exe"),
    "sihost.exe": ("Shell Infrastructure Host", "sihost.exe"), "taskhostw.exe": ("Host Process for Windows Tasks", "taskhostw.exe"),
    "ctfmon.exe": ("CTF Loader", "CTFMON.EXE"), "explorer.exe": ("Windows Explorer", "EXPLORER.EXE"),
    "runtimebroker.exe": ("Runtime Broker", "RuntimeBroker.exe"), "notepad.exe": ("Notepad", "NOTEPAD.EXE"),
    "spoolsv.exe": ("Spooler SubSystem App", "spoolsv.exe"), "wmiprvse.exe": ("WMI Provider Host", "Wmiprvse.exe"),
    "cmd.exe": ("Windows Command Processor", "Cmd.Exe"), "wscript.exe": ("Microsoft \u00ae Windows Based Script Host", "wscript.exe"),
    "werfault.exe": ("Windows Problem Reporting", "WerFault.exe"), "conhost.exe": ("Console Window Host", "CONHOST.EXE"),
    "powershell.exe": ("Windows PowerShell", "PowerShell.EXE"), "searchindexer.exe": ("Microsoft Windows Search Indexer", "SearchIndexer.exe"),
}
# Other vendors' files: (CompanyName, ProductName, version, FileDescription, OriginalFilename)
VENDORS = {
    "winword.exe": ("Microsoft Corporation", "Microsoft Office", (16, 0, 17328, 20162), "Microsoft Word", "WinWord.exe"),
    "msmpeng.exe": ("Microsoft Corporation", WINDOWS_PRODUCT, (4, 18, 24010, 12), "Antimalware Service Executable",
                    "MsMpEng.exe"),
    "legacyapp.exe": ("Legacy Software Inc.", "Legacy App", (2, 1, 0, 7), "Legacy App", "legacyapp.exe"),
}
# No version resource, as the attacker's modules of the scenarios are built: evilmon.dll, netsvcx.dll, k32hook.dll.


def version_fields(mod: Module) -> tuple[str, str, tuple[int, ...], str, str] | None:
    if mod.name in VENDORS:
        return VENDORS[mod.name]
    if mod.name in DESCRIPTIONS:
        description, original = DESCRIPTIONS[mod.name]
        return "Microsoft Corporation", WINDOWS_PRODUCT, WINDOWS_VERSION, description, original
    return None


def version_resource(mod: Module) -> str | None:
    """The module's VERSIONINFO as resource-compiler source (UTF-8), or None for a module without one."""
    fields = version_fields(mod)
    if fields is None:
        return None
    company, product, version, description, original = fields
    dotted = ".".join(map(str, version))
    file_version = f"{dotted} (WinBuild.160101.0800)" if company == "Microsoft Corporation" and version[0] == 10 else dotted
    strings = {"CompanyName": company, "FileDescription": description, "FileVersion": file_version,
               "InternalName": original, "LegalCopyright": f"\u00a9 {company}. All rights reserved.",
               "OriginalFilename": original, "ProductName": product, "ProductVersion": dotted}
    values = "\n".join(f'      VALUE "{k}", "{v}"' for k, v in strings.items())
    commas = ",".join(map(str, version))
    return f"""#pragma code_page(65001)
1 VERSIONINFO
FILEVERSION {commas}
PRODUCTVERSION {commas}
FILEFLAGSMASK 0x3f
FILEFLAGS 0x0
FILEOS 0x40004
FILETYPE {"0x1" if mod.is_exe else "0x2"}
FILESUBTYPE 0x0
BEGIN
  BLOCK "StringFileInfo"
  BEGIN
    BLOCK "040904B0"
    BEGIN
{values}
    END
  END
  BLOCK "VarFileInfo"
  BEGIN
    VALUE "Translation", 0x409, 1200
  END
END
"""


def compile_resource(mod: Module, work: Path) -> str | None:
    source = version_resource(mod)
    if source is None:
        return None
    rc = work / f"{mod.name}_{mod.arch}.rc"
    rc.write_text(source, encoding="utf-8")
    obj = work / f"{mod.name}_{mod.arch}.res.o"
    result = subprocess.run([WINDRES[mod.arch], "-c", "65001", "-i", str(rc), "-o", str(obj), "-O", "coff"],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"windres for {mod.arch}/{mod.name} failed:\n{result.stderr}")
    return str(obj)


# ---- system call stubs -------------------------------------------------------------------------


def syscalls(module: str) -> list[tuple[str, int]]:
    out = []
    for line in (SRC / "syscalls.txt").read_text().splitlines():
        line = line.split("#", 1)[0].split()
        if len(line) == 3 and line[0] == module:
            out.append((line[1], int(line[2], 16)))
    return out


# Windows 10 x64's stub after the service number: test byte [7FFE0308h], 1 (KUSER_SHARED_DATA.SystemCall:
# use int 2Eh); jne +3; syscall; ret; int 2Eh; ret. An idle thread's frame 0 is the byte after `syscall`.
X64_STUB_TAIL = ("0xf6, 0x04, 0x25, 0x08, 0x03, 0xfe, 0x7f, 0x01", "0x75, 0x03", "0x0f, 0x05", "0xc3", "0xcd, 0x2e",
                 "0xc3")


def stub_source(module: str, arch: str) -> str:
    """Assembly for the stubs: the exact Windows byte encoding, one 32-byte (x64) or 16-byte slot each.

    Each x64 stub is a function of its own with its own .pdata entry (no prolog, no unwind codes),
    as in Windows' ntdll and win32u: unwinders and readers look a stub up like any function."""
    lines = ["    .text"]
    if arch == "x86" and module == "ntdll":
        lines += ["    .globl _Wow64SystemServiceCall", "    .p2align 4", "_Wow64SystemServiceCall:",
                  "    jmp *_Wow64Transition"]
    for name, ssn in syscalls(module):
        if arch == "x64":
            body = [".byte 0x4c, 0x8b, 0xd1", ".byte 0xb8", f".long {ssn:#x}"] + [f".byte {b}" for b in X64_STUB_TAIL]
            lines += [f"    .globl {name}", "    .p2align 5", f"    .seh_proc {name}", f"{name}:", "    .seh_endprologue"]
            lines += ["    " + b for b in body] + ["    .seh_endproc"]
        else:
            target = "_Wow64SystemServiceCall" if module == "ntdll" else "_Wow64SystemServiceCallWin32u"
            body = [f"movl ${ssn:#x}, %eax", f"movl ${target}, %edx", "call *%edx", "ret"]
            lines += [f"    .globl _{name}", "    .p2align 4", f"_{name}:"] + ["    " + b for b in body]
    if arch == "x86" and module == "win32u":
        lines += ["    .globl _Wow64SystemServiceCallWin32u", "    .p2align 4", "_Wow64SystemServiceCallWin32u:",
                  "    jmp *_Win32uTransition", "    .data", "    .globl _Win32uTransition",
                  "_Win32uTransition:", "    .long 0"]
    return "\n".join(lines) + "\n"


def stub_exports(module: str) -> list[str]:
    names = [name for name, _ in syscalls(module)]
    return names


# ---- build ------------------------------------------------------------------------------------------


def build_module(mod: Module, out: Path, work: Path) -> Path:
    arch_out = out / mod.arch
    arch_out.mkdir(parents=True, exist_ok=True)
    target = arch_out / mod.name
    sources = [str(SRC / s) for s in mod.sources] + [str(SRC / "common.c")]
    def_lines = []
    if mod.stubs:
        stub = work / f"{mod.stubs}_stubs_{mod.arch}.S"
        stub.write_text(stub_source(mod.stubs, mod.arch))
        sources.append(str(stub))
        def_lines = stub_exports(mod.stubs)
    sources += [str(SRC / s) for s in mod.tail]
    if not mod.sources:  # a stubs-only module still needs an entry point
        entry = work / f"{mod.stubs}_entry_{mod.arch}.c"
        entry.write_text('#include "fake.h"\nDEFINE_SINK\nDEFINE_DLLMAIN\n')
        sources.append(str(entry))
    if def_lines:
        def_file = work / f"{mod.name}_{mod.arch}.exports.c"
        def_file.write_text("".join(f'__asm__(".section .drectve\\n.ascii \\" -export:{n}\\"\\n.text");\n'
                                    for n in def_lines))
        sources.append(str(def_file))
    resource = compile_resource(mod, work)
    if resource is not None:
        sources.append(resource)
    deps = [str(out / mod.arch / d) for d in mod.imports]
    entry_point = ("wWinMainCRTStartup" if mod.is_exe else "DllMain")
    if mod.arch == "x86":
        entry_point = "_" + entry_point
    cmd = [COMPILERS[mod.arch], *CFLAGS, *ARCH_FLAGS[mod.arch], f"-I{SRC}",
           *[f"-D{d}" for d in mod.defines], "-nostdlib",
           *([] if mod.is_exe else ["-shared"]),
           "-o", str(target), *sources, *deps,
           f"-Wl,--image-base={mod.base:#x}", f"-Wl,-e,{entry_point}", "-Wl,--dynamicbase",
           "-Wl,--no-insert-timestamp", "-Wl,--major-os-version=10", "-Wl,--minor-os-version=0",
           "-Wl,--major-subsystem-version=6", "-Wl,--minor-subsystem-version=0"]
    if mod.arch == "x64":
        cmd.append("-Wl,--high-entropy-va")
    if mod.is_exe:
        cmd.append("-Wl,--subsystem,windows")
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"building {mod.arch}/{mod.name} failed:\n{' '.join(cmd)}\n{result.stderr}")
    stamp(target, mod)
    return target


def stamp(path: Path, mod: Module) -> None:
    """A fixed, per-module TimeDateStamp and a correct checksum (so rebuilds are byte-identical)."""
    import pefile

    pe = pefile.PE(str(path))
    digest = hashlib.sha256(f"{mod.arch}/{mod.name}".encode()).digest()
    pe.FILE_HEADER.TimeDateStamp = 0x5E000000 + int.from_bytes(digest[:3], "little")
    pe.OPTIONAL_HEADER.CheckSum = 0
    data = bytearray(pe.write())
    pe.close()
    pe = pefile.PE(data=bytes(data))
    pe.OPTIONAL_HEADER.CheckSum = pe.generate_checksum()
    path.write_bytes(pe.write())
    pe.close()


def functions(path: Path, mod: Module) -> dict[str, dict]:
    """Every function symbol of the module (exported or not) with its RVA."""
    import pefile

    pe = pefile.PE(str(path), fast_load=True)
    pe.parse_data_directories(directories=[pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_EXPORT"]])
    exported = {}
    if hasattr(pe, "DIRECTORY_ENTRY_EXPORT"):
        for sym in pe.DIRECTORY_ENTRY_EXPORT.symbols:
            if sym.name:
                exported[sym.name.decode()] = sym.address
    image_base = pe.OPTIONAL_HEADER.ImageBase
    pe.close()
    listing = subprocess.run([NM[mod.arch], "--defined-only", str(path)], capture_output=True, text=True,
                             check=True).stdout
    out: dict[str, dict] = {}
    for line in listing.splitlines():
        match = re.match(r"^([0-9a-f]+) ([Tt]) (\S+)$", line)
        if not match:
            continue
        name = match.group(3)
        if mod.arch == "x86" and name.startswith("_"):
            name = name[1:]
        name = name.split("@")[0]
        if name.startswith((".", "__")) or name in ("memset", "memcpy", "DllMain"):
            continue
        rva = int(match.group(1), 16) - image_base
        out[name] = {"rva": rva, "exported": name in exported}
    for name, rva in exported.items():
        out.setdefault(name, {"rva": rva, "exported": True, "data": True})
    return dict(sorted(out.items(), key=lambda kv: kv[1]["rva"]))


def build_all(out: Path) -> dict:
    catalog: dict = {"x64": {}, "x86": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for mod in modules():
            target = build_module(mod, out, Path(tmp))
            catalog[mod.arch][mod.name] = {
                "file": f"bin/{mod.arch}/{mod.name}",
                "path": mod.path,
                "base": mod.base,
                "sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
                "signing_level": mod.signing_level,
                "functions": functions(target, mod),
            }
    return catalog


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="rebuild in a temporary folder and compare")
    args = parser.parse_args()
    for tool in list(COMPILERS.values()) + list(NM.values()) + list(WINDRES.values()):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: install mingw-w64 (make system-deps)")
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            catalog = build_all(Path(tmp) / "bin")
        committed = json.loads((HERE / "catalog.json").read_text())
        same = catalog == committed
        print("modules are up to date" if same else "modules differ from their sources: run build.py")
        return 0 if same else 1
    catalog = build_all(HERE / "bin")
    (HERE / "catalog.json").write_text(json.dumps(catalog, indent=1) + "\n")
    count = sum(len(v) for v in catalog.values())
    print(f"built {count} modules into {HERE / 'bin'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
