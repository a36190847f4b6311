"""Fixed-ABI structures kernel symbol tables lack, written as a Volatility ISF the forge reads like any table.

Kernel PDBs describe the kernel's own types; the debugger data block, the WOW64 CPU area and
context, the 32-bit TEB/PEB and loader structures, and a few system-call argument structures are
fixed ABIs that ntdll, WOW64 and debuggers hard-code, so the forge defines them here with their
real offsets (and the wait-reason and thread-state enums, for tables without them).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from .layout import Layout
from .structdef import (
    I16, I32, I64, PVOID, U8, U16, U32, U64, WCHAR,
    Bits, EnumDef, F, Overlay, StructCompiler, StructDef, arr, ptr, st, struct, un, union,
)

LE = st("_LIST_ENTRY")
US = st("_UNICODE_STRING")
LI = un("_LARGE_INTEGER")


def _common() -> list[StructDef]:
    return [
        struct("_LIST_ENTRY", F("Flink", ptr(LE)), F("Blink", ptr(LE))),
        struct("_SINGLE_LIST_ENTRY", F("Next", ptr(st("_SINGLE_LIST_ENTRY")))),
        struct("_UNICODE_STRING", F("Length", U16), F("MaximumLength", U16), F("Buffer", ptr(WCHAR))),
        union("_LARGE_INTEGER", F("LowPart", U32, 0), F("HighPart", I32, 4), F("QuadPart", I64, 0)),
        union("_ULARGE_INTEGER", F("LowPart", U32, 0), F("HighPart", U32, 4), F("QuadPart", U64, 0)),
        struct("_KSYSTEM_TIME", F("LowPart", U32), F("High1Time", I32), F("High2Time", I32)),
        struct("_CLIENT_ID", F("UniqueProcess", PVOID), F("UniqueThread", PVOID)),
        struct("_EX_FAST_REF", Overlay((F("Object", PVOID), Bits("unsigned long long", (("RefCnt", 4),)),
                                        F("Value", U64)))),
        struct("_EX_PUSH_LOCK", Overlay((Bits("unsigned long long", (("Locked", 1), ("Waiting", 1), ("Waking", 1),
                                                                   ("MultipleShared", 1), ("Shared", 60))),
                                         F("Value", U64), F("Ptr", PVOID)))),
        struct("_EX_RUNDOWN_REF", Overlay((F("Count", U64), F("Ptr", PVOID)))),
        struct("_LUID", F("LowPart", U32), F("HighPart", I32)),
        struct("_RTL_BALANCED_NODE",
               Overlay((F("Children", arr(ptr(st("_RTL_BALANCED_NODE")), 2)),)),
               F("Left", ptr(st("_RTL_BALANCED_NODE")), 0), F("Right", ptr(st("_RTL_BALANCED_NODE")), 8),
               Overlay((Bits("unsigned char", (("Red", 1),)), Bits("unsigned char", (("Balance", 2),)),
                        F("ParentValue", U64)), at=16)),
        struct("_RTL_AVL_TREE", F("Root", ptr(st("_RTL_BALANCED_NODE")))),
        struct("_DISPATCHER_HEADER",
               Overlay((F("Lock", I32), F("LockNV", I32),
                        Bits("unsigned long", (("Type", 8), ("Signalling", 8), ("Size", 8), ("Reserved1", 8))))),
               F("SignalState", I32), F("WaitListHead", LE)),
        struct("_KEVENT", F("Header", st("_DISPATCHER_HEADER"))),
        struct("_KSEMAPHORE", F("Header", st("_DISPATCHER_HEADER")), F("Limit", I32)),
        struct("_KDPC", F("TargetInfoAsUlong", U32), F("DpcListEntry", st("_SINGLE_LIST_ENTRY")),
               F("ProcessorHistory", U64), F("DeferredRoutine", PVOID), F("DeferredContext", PVOID),
               F("SystemArgument1", PVOID), F("SystemArgument2", PVOID), F("DpcData", PVOID)),
        struct("_KTIMER", F("Header", st("_DISPATCHER_HEADER")), F("DueTime", un("_ULARGE_INTEGER")),
               F("TimerListEntry", LE), F("Dpc", ptr(st("_KDPC"))), F("Processor", U16), F("TimerType", U16),
               F("Period", U32)),
        struct("_KMUTANT", F("Header", st("_DISPATCHER_HEADER")), F("MutantListEntry", LE),
               F("OwnerThread", ptr(st("_KTHREAD"))), F("MutantFlags", U8), F("Abandoned", U8),
               F("ApcDisable", U8)),
        struct("_ERESOURCE", F("SystemResourcesList", LE), F("OwnerTable", PVOID), F("ActiveCount", I16),
               F("Flag", U16), F("SharedWaiters", ptr(st("_KSEMAPHORE"))), F("ExclusiveWaiters", ptr(st("_KEVENT"))),
               F("OwnerEntry", arr(U64, 2)), F("ActiveEntries", U32), F("ContentionCount", U32),
               F("NumberOfSharedWaiters", U32), F("NumberOfExclusiveWaiters", U32), F("Reserved2", PVOID),
               F("Address", PVOID), F("SpinLock", U64)),
    ]


def abi_structs() -> list[StructDef]:
    """ABI-fixed structures real kernel symbol tables lack; also the forge's fallback for those tables."""
    le32, us32 = st("LIST_ENTRY32"), st("_UNICODE_STRING32")
    return [
        struct("LIST_ENTRY32", F("Flink", U32), F("Blink", U32)),
        struct("LIST_ENTRY64", F("Flink", U64), F("Blink", U64)),
        struct("_UNICODE_STRING32", F("Length", U16), F("MaximumLength", U16), F("Buffer", U32)),
        struct("_DBGKD_DEBUG_DATA_HEADER64", F("List", st("LIST_ENTRY64")), F("OwnerTag", U32), F("Size", U32)),
        struct("_KDDEBUGGER_DATA64",
               F("Header", st("_DBGKD_DEBUG_DATA_HEADER64"), 0), F("KernBase", U64, 0x18),
               F("PsLoadedModuleList", U64, 0x48), F("PsActiveProcessHead", U64, 0x50),
               F("PspCidTable", U64, 0x58), F("MmPfnDatabase", U64, 0xC0), F("NtBuildLab", U64, 0x208),
               F("KiProcessorBlock", U64, 0x218), F("CmNtCSDVersion", U64, 0x268), size=0x340),
        struct("_FLOATING_SAVE_AREA", F("ControlWord", U32), F("StatusWord", U32), F("TagWord", U32),
               F("ErrorOffset", U32), F("ErrorSelector", U32), F("DataOffset", U32), F("DataSelector", U32),
               F("RegisterArea", arr(U8, 80)), F("Cr0NpxState", U32)),
        struct("_WOW64_CONTEXT",
               F("ContextFlags", U32, 0), F("Dr0", U32), F("Dr1", U32), F("Dr2", U32), F("Dr3", U32),
               F("Dr6", U32), F("Dr7", U32), F("FloatSave", st("_FLOATING_SAVE_AREA"), 0x1C),
               F("SegGs", U32, 0x8C), F("SegFs", U32, 0x90), F("SegEs", U32, 0x94), F("SegDs", U32, 0x98),
               F("Edi", U32, 0x9C), F("Esi", U32, 0xA0), F("Ebx", U32, 0xA4), F("Edx", U32, 0xA8),
               F("Ecx", U32, 0xAC), F("Eax", U32, 0xB0), F("Ebp", U32, 0xB4), F("Eip", U32, 0xB8),
               F("SegCs", U32, 0xBC), F("EFlags", U32, 0xC0), F("Esp", U32, 0xC4), F("SegSs", U32, 0xC8),
               F("ExtendedRegisters", arr(U8, 512), 0xCC)),
        struct("_WOW64_CPURESERVED", F("Flags", U16, 0), F("Machine", U16, 2), F("Context", st("_WOW64_CONTEXT"), 4)),
        struct("_NT_TIB32", F("ExceptionList", U32, 0), F("StackBase", U32, 4), F("StackLimit", U32, 8),
               F("SubSystemTib", U32, 0xC), F("FiberData", U32, 0x10), F("ArbitraryUserPointer", U32, 0x14),
               F("Self", U32, 0x18)),
        struct("_CLIENT_ID32", F("UniqueProcess", U32), F("UniqueThread", U32)),
        struct("_TEB32", F("NtTib", st("_NT_TIB32"), 0), F("EnvironmentPointer", U32, 0x1C),
               F("ClientId", st("_CLIENT_ID32"), 0x20), F("ActiveRpcHandle", U32, 0x28),
               F("ThreadLocalStoragePointer", U32, 0x2C), F("ProcessEnvironmentBlock", U32, 0x30),
               F("LastErrorValue", U32, 0x34), F("DeallocationStack", U32, 0xE0C), F("TlsSlots", arr(U32, 64), 0xE10),
               size=0xFE8),
        struct("_PEB_LDR_DATA32", F("Length", U32, 0), F("Initialized", U8, 4), F("SsHandle", U32, 8),
               F("InLoadOrderModuleList", le32, 0xC), F("InMemoryOrderModuleList", le32, 0x14),
               F("InInitializationOrderModuleList", le32, 0x1C), F("EntryInProgress", U32, 0x24),
               F("ShutdownInProgress", U8, 0x28), F("ShutdownThreadId", U32, 0x2C)),
        struct("_LDR_DATA_TABLE_ENTRY32",
               F("InLoadOrderLinks", le32, 0), F("InMemoryOrderLinks", le32, 8),
               F("InInitializationOrderLinks", le32, 0x10), F("DllBase", U32, 0x18), F("EntryPoint", U32, 0x1C),
               F("SizeOfImage", U32, 0x20), F("FullDllName", us32, 0x24), F("BaseDllName", us32, 0x2C),
               F("Flags", U32, 0x34), F("ObsoleteLoadCount", U16, 0x38), F("TlsIndex", U16, 0x3A),
               F("HashLinks", le32, 0x3C), F("TimeDateStamp", U32, 0x44), F("LoadTime", LI, 0x88), size=0xA8),
        struct("_CURDIR32", F("DosPath", us32), F("Handle", U32)),
        struct("_FILE_RENAME_INFORMATION", Overlay((F("ReplaceIfExists", U8), F("Flags", U32)), at=0),
               F("RootDirectory", PVOID, 8), F("FileNameLength", U32, 0x10), F("FileName", arr(WCHAR, 1), 0x14),
               size=0x18),
        struct("_PS_ATTRIBUTE", F("Attribute", U64, 0), F("Size", U64, 8),
               Overlay((F("Value", U64), F("ValuePtr", PVOID)), at=0x10), F("ReturnLength", PVOID, 0x18)),
        struct("_PS_ATTRIBUTE_LIST", F("TotalLength", U64, 0), F("Attributes", arr(st("_PS_ATTRIBUTE"), 1), 8)),
        struct("_RTL_USER_PROCESS_PARAMETERS32",
               F("MaximumLength", U32, 0), F("Length", U32, 4), F("Flags", U32, 8), F("DebugFlags", U32, 0xC),
               F("CurrentDirectory", st("_CURDIR32"), 0x24), F("DllPath", us32, 0x30),
               F("ImagePathName", us32, 0x38), F("CommandLine", us32, 0x40), F("Environment", U32, 0x48),
               size=0x2A0),
        struct("_PEB32", F("InheritedAddressSpace", U8, 0), F("BeingDebugged", U8, 2), F("Mutant", U32, 4),
               F("ImageBaseAddress", U32, 8), F("Ldr", U32, 0xC), F("ProcessParameters", U32, 0x10),
               F("SubSystemData", U32, 0x14), F("ProcessHeap", U32, 0x18), F("NumberOfProcessors", U32, 0x64),
               F("NtGlobalFlag", U32, 0x68), F("OSMajorVersion", U32, 0xA4), F("OSMinorVersion", U32, 0xA8),
               F("OSBuildNumber", U16, 0xAC), size=0x480),
    ]


def _enums() -> list[EnumDef]:
    wait_reasons = ["Executive", "FreePage", "PageIn", "PoolAllocation", "DelayExecution", "Suspended",
                    "UserRequest", "WrExecutive", "WrFreePage", "WrPageIn", "WrPoolAllocation", "WrDelayExecution",
                    "WrSuspended", "WrUserRequest", "WrSpare0", "WrQueue", "WrLpcReceive", "WrLpcReply",
                    "WrVirtualMemory", "WrPageOut", "WrRendezvous", "WrKeyedEvent", "WrTerminated",
                    "WrProcessInSwap", "WrCpuRateControl", "WrCalloutStack", "WrKernel", "WrResource",
                    "WrPushLock", "WrMutex", "WrQuantumEnd", "WrDispatchInt", "WrPreempted", "WrYieldExecution",
                    "WrFastMutex", "WrGuardedMutex", "WrRundown", "WrAlertByThreadId", "WrDeferredPreempt",
                    "WrPhysicalFault", "MaximumWaitReason"]
    states = ["Initialized", "Ready", "Running", "Standby", "Terminated", "Waiting", "Transition",
              "DeferredReady", "GateWaitObsolete", "WaitingForProcessInSwap"]
    return [
        EnumDef("_KWAIT_REASON", "int", {n: i for i, n in enumerate(wait_reasons)}),
        EnumDef("_KTHREAD_STATE", "int", {n: i for i, n in enumerate(states)}),
        EnumDef("_NT_PRODUCT_TYPE", "int", {"NtProductWinNt": 1, "NtProductLanManNt": 2, "NtProductServer": 3}),
        EnumDef("_SYSTEM_DLL_TYPE", "int", {"PsNativeSystemDll": 0, "PsWowX86SystemDll": 1, "PsWowArm32SystemDll": 2,
                                            "PsWowAmd64SystemDll": 3, "PsWowChpeX86SystemDll": 4,
                                            "PsVsmEnclaveRuntimeDll": 5, "PsSystemDllTotalTypes": 6}),
        EnumDef("_TOKEN_TYPE", "int", {"TokenPrimary": 1, "TokenImpersonation": 2}),
        EnumDef("_SECURITY_IMPERSONATION_LEVEL", "int", {"SecurityAnonymous": 0, "SecurityIdentification": 1,
                                                         "SecurityImpersonation": 2, "SecurityDelegation": 3}),
        EnumDef("_LDR_DLL_LOAD_REASON", "int", {"LoadReasonStaticDependency": 0,
                                                "LoadReasonStaticForwarderDependency": 1,
                                                "LoadReasonDynamicForwarderDependency": 2,
                                                "LoadReasonDelayloadDependency": 3, "LoadReasonDynamicLoad": 4,
                                                "LoadReasonAsImageLoad": 5, "LoadReasonAsDataLoad": 6,
                                                "LoadReasonUnknown": -1}),
        EnumDef("_MODE", "char", {"KernelMode": 0, "UserMode": 1, "MaximumMode": 2}),
    ]


@lru_cache(maxsize=1)
def _abi_isf() -> dict[str, Any]:
    compiler = StructCompiler(_common() + abi_structs(), _enums())
    return {
        "base_types": compiler.base_types(),
        "user_types": compiler.user_types(),
        "enums": compiler.enums(),
        "symbols": {},
        "metadata": {"format": "6.1.0", "windows": {"pdb": {"GUID": "0" * 32, "age": 0}}},
    }


def abi_layout() -> Layout:
    """Fixed-ABI structures (debugger data block, WOW64 context, 32-bit loader) for tables that lack them."""
    return Layout(_abi_isf(), "forge ABI definitions")
