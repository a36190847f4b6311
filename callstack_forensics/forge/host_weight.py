"""What a real host's processes hold beyond what a scenario names: modules, VADs, written heap.

Why: a scenario names the few modules its stacks run through and the regions its story needs,
so its processes carry ten-odd modules and a few dozen VADs. A Windows 10 desktop's processes
carry tens of modules (a couple of hundred in explorer) and hundreds of VADs (over a thousand in
explorer), and megabytes of written private memory. The analysis's per-process work grows with
each (the loader list, the VAD tree, image sections, the CONTEXT-record scan of private pages),
and so does Volatility's, so speed figures taken on an image of a real host's size mean
something only when its processes weigh what real ones do.

The weights are round figures of the order a Windows 10 22H2 desktop shows (VMMap, Process
Explorer): they are meant for measuring, not to imitate one machine. What is added:

- modules: real System32 names, each a copy of one small catalog module (its code imports
  ntdll only) relocated to a base of its own, the same base in every process (as Windows maps a
  DLL), with a TimeDateStamp of its own so that every one is a build of its own to a reader;
- VADs: reserved private ranges (as heaps and thread pools leave them), mapped data files
  (NLS tables, fonts, MUI files) and heap segments with written pages;
- written heap: pages at the same address in every process (Windows' 64-bit heaps sit at
  ``0x1XX'XXXX0000``), holding pointers into the heap, small integers, UTF-16 text and zeros.
  Their frames are shared between processes: the image stays small on disk. WOW64 processes get
  the reserved and mapped VADs only, in their 32-bit space.

Nothing added is executable private memory or sits on a stack, so no detection has cause to fire.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass

PAGE = 0x1000
FILLER_TEMPLATE = "faultrep.dll"  # small, imports ntdll only: it binds in every 64-bit process
FILLER_BASE = 0x7FFA00000000  # below every catalog module (the lowest is at 0x7ffb96500000)
FILLER_STRIDE = 0x200000
HEAP_BASE = 0x1F000000000  # the written heap segments: one address in every 64-bit process
HEAP_SEGMENT = 0x100000  # each segment's reserve; the written pages are its first ones
PADDING_RESERVE = 0x40000  # a reserved private range (a thread pool's, a heap's uncommitted tail)
MAPPED_VIEW = 0x80000


@dataclass(frozen=True, slots=True)
class ProcessWeight:
    """How much a process holds in all: loaded modules (the executable included), VADs, and KiB
    of written private heap."""

    modules: int
    vads: int
    heap_kib: int


DEFAULT_WEIGHT = ProcessWeight(modules=55, vads=240, heap_kib=3072)
WEIGHTS: dict[str, ProcessWeight] = {
    "explorer.exe": ProcessWeight(190, 1300, 24576),
    "searchindexer.exe": ProcessWeight(90, 500, 8192),
    "msmpeng.exe": ProcessWeight(110, 700, 16384),
    "dwm.exe": ProcessWeight(80, 450, 8192),
    "svchost.exe": ProcessWeight(45, 200, 2048),
    "lsass.exe": ProcessWeight(75, 320, 4096),
    "services.exe": ProcessWeight(40, 160, 2048),
    "csrss.exe": ProcessWeight(20, 110, 1024),
    "wininit.exe": ProcessWeight(25, 110, 1024),
    "winlogon.exe": ProcessWeight(40, 160, 1024),
    "smss.exe": ProcessWeight(2, 30, 256),
    "fontdrvhost.exe": ProcessWeight(15, 80, 512),
    "conhost.exe": ProcessWeight(30, 120, 1024),
    "cmd.exe": ProcessWeight(12, 70, 512),
}

# Modules of a Windows 10 desktop process beyond the ones the catalog builds, in the order the
# loader tends to bring them in: a process takes as many from the front as its weight asks.
FILLER_NAMES: tuple[str, ...] = (
    "msvcrt.dll", "combase.dll", "ucrtbase.dll", "bcryptprimitives.dll", "gdi32.dll", "gdi32full.dll",
    "msvcp_win.dll", "imm32.dll", "cfgmgr32.dll", "shlwapi.dll", "oleaut32.dll", "shcore.dll",
    "kernel.appcore.dll", "powrprof.dll", "umpdc.dll", "profapi.dll", "windows.storage.dll", "wldp.dll",
    "cryptbase.dll", "bcrypt.dll", "sspicli.dll", "ntmarta.dll", "clbcatq.dll", "uxtheme.dll", "msctf.dll",
    "propsys.dll", "wintypes.dll", "userenv.dll", "version.dll", "crypt32.dll", "msasn1.dll",
    "wintrust.dll", "iphlpapi.dll", "dnsapi.dll", "nsi.dll", "mswsock.dll", "winnsi.dll", "dhcpcsvc.dll",
    "dhcpcsvc6.dll", "rasadhlp.dll", "fwpuclnt.dll", "ncrypt.dll", "ntasn1.dll", "dpapi.dll",
    "cryptsp.dll", "rsaenh.dll", "gpapi.dll", "netutils.dll", "srvcli.dll", "wkscli.dll", "samcli.dll",
    "logoncli.dll", "mpr.dll", "winsta.dll", "wtsapi32.dll", "sxs.dll", "apphelp.dll", "setupapi.dll",
    "devobj.dll", "wevtapi.dll", "authz.dll", "samlib.dll", "ntdsapi.dll", "secur32.dll", "schannel.dll",
    "mskeyprotect.dll", "ncryptsslp.dll", "webio.dll", "winhttp.dll", "wininet.dll", "urlmon.dll",
    "iertutil.dll", "cryptnet.dll", "edputil.dll", "policymanager.dll", "msvcp110_win.dll",
    "dwmapi.dll", "dxgi.dll", "d3d11.dll", "dcomp.dll", "d2d1.dll", "dwrite.dll", "windowscodecs.dll",
    "comctl32.dll", "comdlg32.dll", "coremessaging.dll", "coreuicomponents.dll", "textinputframework.dll",
    "twinapi.appcore.dll", "rmclient.dll", "execmodelproxy.dll", "staterepository.core.dll",
    "windows.staterepositoryps.dll", "windows.ui.dll", "inputhost.dll", "bcp47langs.dll", "bcp47mrm.dll",
    "mrmcorer.dll", "appresolver.dll", "explorerframe.dll", "thumbcache.dll", "structuredquery.dll",
    "actxprxy.dll", "cscapi.dll", "linkinfo.dll", "ntshrui.dll", "twinui.dll", "twinui.appcore.dll",
    "windows.immersiveshell.serviceprovider.dll", "notificationcontroller.dll", "usermgrcli.dll",
    "cldapi.dll", "fltlib.dll", "atlthunk.dll", "dui70.dll", "duser.dll", "tiledatarepository.dll",
    "shellcommoncommonproxystub.dll", "windows.shell.servicehostbuilder.dll", "oleacc.dll", "uiautomationcore.dll",
    "sppc.dll", "slc.dll", "msimg32.dll", "winmm.dll", "winmmbase.dll", "mmdevapi.dll", "audioses.dll",
    "avrt.dll", "hid.dll", "wlanapi.dll", "ondemandconnroutehelper.dll", "netprofm.dll", "npmproxy.dll",
    "dataexchange.dll", "d3d10warp.dll", "dxcore.dll", "directmanipulation.dll", "windows.ui.immersive.dll",
    "photometadatahandler.dll", "ninput.dll", "winsqlite3.dll", "pcacli.dll", "mfplat.dll", "rtworkq.dll",
    "wpnapps.dll", "wpnclient.dll", "execmodelclient.dll", "capabilityaccessmanagerclient.dll",
    "applicationframe.dll", "appxdeploymentclient.dll", "msiso.dll", "ieframe.dll", "netapi32.dll",
    "dsreg.dll", "tokenbroker.dll", "cryptngc.dll", "wkspbrokerax.dll", "mlang.dll", "provsvc.dll",
    "xmllite.dll", "wbemprox.dll", "wbemsvc.dll", "fastprox.dll", "wmiclnt.dll", "taskschd.dll",
    "wldap32.dll", "ktmw32.dll", "clusapi.dll", "resutils.dll", "firewallapi.dll", "fwbase.dll",
    "dhcpcore.dll", "dhcpcore6.dll", "wshqos.dll", "winrnr.dll", "pnrpnsp.dll", "napinsp.dll",
    "nlaapi.dll", "wshbth.dll", "bthprops.cpl", "devrtl.dll", "spinf.dll", "drvstore.dll",
    "wdscore.dll", "cabinet.dll", "msxml6.dll", "esent.dll", "vaultcli.dll", "credui.dll",
)

# Data files a process maps as views (the NLS tables every process has, fonts, MUI resources).
DATA_FILES: tuple[str, ...] = (
    r"C:\Windows\System32\locale.nls", r"C:\Windows\Globalization\Sorting\SortDefault.nls",
    r"C:\Windows\System32\C_1252.NLS", r"C:\Windows\System32\C_437.NLS",
    r"C:\Windows\System32\en-US\kernel32.dll.mui", r"C:\Windows\System32\en-US\kernelbase.dll.mui",
    r"C:\Windows\System32\en-US\user32.dll.mui", r"C:\Windows\System32\en-US\svchost.exe.mui",
    r"C:\Windows\Fonts\segoeui.ttf", r"C:\Windows\Fonts\StaticCache.dat", r"C:\Windows\Fonts\tahoma.ttf",
    r"C:\Windows\Registration\R000000000006.clb", r"C:\Windows\System32\en-US\mswsock.dll.mui",
    r"C:\Windows\System32\en-US\setupapi.dll.mui", r"C:\Windows\System32\en-US\crypt32.dll.mui",
    r"C:\Windows\System32\en-US\winnlsres.dll.mui", r"C:\ProgramData\Microsoft\Windows\Caches\cversions.2.db",
    r"C:\ProgramData\Microsoft\Windows\Caches\{6AF0698E-D558-4F6E-9B3C-3716689AF493}.2.ver0x0000000000000001.db",
    r"C:\Windows\System32\en-US\propsys.dll.mui", r"C:\Windows\System32\en-US\shell32.dll.mui",
)


def weight_of(image_name: str) -> ProcessWeight:
    return WEIGHTS.get(image_name.lower(), DEFAULT_WEIGHT)


def filler_base(index: int) -> int:
    """The base of ``FILLER_NAMES[index]``: one per name, the same in every process."""
    return FILLER_BASE + index * FILLER_STRIDE


def filler_timestamp(index: int) -> int:
    """A TimeDateStamp of its own per filler module (2019-2022, as Windows 10's builds)."""
    return 0x5C000000 + index * 0x00A3D5C1 % 0x08000000


def heap_page(index: int, segment: int) -> bytes:
    """Page ``index`` of a written heap segment at ``segment``: deterministic, heap-like."""
    rng = random.Random(index * 7919 + 17)
    if rng.random() < 0.3:
        return bytes(PAGE)  # a committed page the heap has not written (yet)
    words = []
    for _ in range(PAGE // 8):
        pick = rng.random()
        if pick < 0.3:
            words.append(segment + rng.randrange(0, HEAP_SEGMENT, 16))  # a pointer into the heap
        elif pick < 0.55:
            words.append(rng.randrange(0, 0x10000))  # sizes, counts, flags
        elif pick < 0.75:
            text = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz\\:.") for _ in range(4))
            words.append(int.from_bytes(text.encode("utf-16-le"), "little"))
        else:
            words.append(0)
    return struct.pack(f"<{len(words)}Q", *words)
