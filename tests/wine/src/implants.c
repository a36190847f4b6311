/*
 * Implant state a process dump can hold (issue 15, checks 7-10), set up by the program itself:
 *
 *   hwbp_amsi       waits in WaitForSingleObject; main set Dr0 = amsi!AmsiScanBuffer and Dr7 = 1
 *                   on it with SetThreadContext(CONTEXT_DEBUG_REGISTERS): a patchless AMSI bypass
 *   hwbp_watch      waits likewise, with a data watchpoint (write, 8 bytes) on a global variable:
 *                   what a debugger sets, not a hook
 *   apc_queued      waits non-alertably in WaitForSingleObject with a user APC queued into RWX
 *                   shellcode (QueueUserAPC): it never runs, and a dump holds no APC queue
 *   apc_running     was in SleepEx(INFINITE, TRUE) when an APC into RWX shellcode arrived: the
 *                   shellcode runs on top of the interrupted wait (entered through the APC
 *                   dispatcher) and calls Sleep through a register, where it stays. The shellcode
 *                   has a function table of its own (RtlAddFunctionTable), so that Wine's unwinder,
 *                   run on the suspended thread, gives the reference chain through it; the engine
 *                   never sees that table (it lives in ntdll's private lists, not in any image)
 *
 * and, in the process itself: amsi!AmsiScanBuffer patched to `mov eax, 0x80070057; ret` and
 * ntdll!EtwEventWrite to `ret` (VirtualProtect, write, restore); the executable's own image
 * copied into private RWX memory with its header, and again into R-X memory with the header
 * page zeroed (a reflective load, as loaders leave it).
 *
 * The ready line gives the addresses: "amsi_scan_buffer", "etw_event_write", "shellcode",
 * "pe_copy", "pe_wiped", "watched", and per thread the debug registers read back with
 * GetThreadContext ("dr0", "dr7").
 */
#include "common.h"

static HANDLE never;
static volatile ULONG64 watched_value;

static DWORD WINAPI wait_main(LPVOID arg)
{
    for (;;) WaitForSingleObject(never, INFINITE);
    return 0;
}

__attribute__((noinline)) static void sleep_alertable(void)
{
    for (;;) SleepEx(INFINITE, TRUE);
}

static DWORD WINAPI alertable_main(LPVOID arg)
{
    sleep_alertable();
    return 0;
}

/*
 * An APC routine in RWX memory that calls Sleep through a register and never returns:
 *   53 push rbx; 48 83 ec 20 sub rsp, 0x20; 48 89 cb mov rbx, rcx (rcx = Sleep);
 *   b9 ff ff ff ff mov ecx, INFINITE; ff d3 call rbx (return site +15); eb f7 jmp to mov ecx
 * with its UNWIND_INFO (push rbx, alloc 0x20) for RtlAddFunctionTable.
 */
static const BYTE apc_sleep_code[] = {0x53, 0x48, 0x83, 0xec, 0x20, 0x48, 0x89, 0xcb, 0xb9, 0xff, 0xff, 0xff,
                                      0xff, 0xff, 0xd3, 0xeb, 0xf7};
static const BYTE apc_sleep_unwind[] = {0x01, 0x05, 0x02, 0x00, 0x05, 0x32, 0x01, 0x30};
#define APC_CODE 0x200
#define APC_UNWIND 0x100
#define APC_RETURN_SITE 15

static BYTE *place_apc_code(void)
{
    static RUNTIME_FUNCTION table[1];
    BYTE *page = VirtualAlloc(NULL, 0x1000, MEM_COMMIT | MEM_RESERVE, PAGE_EXECUTE_READWRITE);
    if (!page) return NULL;
    memset(page, 0xcc, 0x1000);
    memcpy(page + APC_CODE, apc_sleep_code, sizeof(apc_sleep_code));
    memcpy(page + APC_UNWIND, apc_sleep_unwind, sizeof(apc_sleep_unwind));
    table[0].BeginAddress = APC_CODE;
    table[0].EndAddress = APC_CODE + sizeof(apc_sleep_code);
    table[0].UnwindData = APC_UNWIND;
    if (!RtlAddFunctionTable(table, 1, (DWORD64)(ULONG_PTR)page)) return NULL;
    FlushInstructionCache(GetCurrentProcess(), page, 0x1000);
    return page + APC_CODE;
}

static void fail(const char *what)
{
    fprintf(stderr, "%s failed: %lu\n", what, GetLastError());
    ExitProcess(3);
}

/* Sets Dr0 and Dr7 on a thread (suspended around it) and reads them back. */
static void set_breakpoint(cf_thread *t, DWORD64 address, DWORD64 dr7)
{
    CONTEXT ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.ContextFlags = CONTEXT_DEBUG_REGISTERS;
    if (SuspendThread(t->handle) == (DWORD)-1) fail("SuspendThread");
    if (!GetThreadContext(t->handle, &ctx)) fail("GetThreadContext");
    ctx.Dr0 = address;
    ctx.Dr7 = dr7;
    ctx.ContextFlags = CONTEXT_DEBUG_REGISTERS;
    if (!SetThreadContext(t->handle, &ctx)) fail("SetThreadContext");
    memset(&ctx, 0, sizeof(ctx));
    ctx.ContextFlags = CONTEXT_DEBUG_REGISTERS;
    if (!GetThreadContext(t->handle, &ctx)) fail("GetThreadContext");
    ResumeThread(t->handle);
    snprintf(t->extra_json, sizeof(t->extra_json), ", \"dr0\": \"0x%llx\", \"dr7\": \"0x%llx\"",
             (unsigned long long)ctx.Dr0, (unsigned long long)ctx.Dr7);
}

/* Overwrites the first bytes of a function, as an in-memory bypass does. */
static void patch(void *function, const void *bytes, SIZE_T size)
{
    DWORD old;
    if (!VirtualProtect(function, size, PAGE_EXECUTE_READWRITE, &old)) fail("VirtualProtect");
    memcpy(function, bytes, size);
    if (!VirtualProtect(function, size, old, &old)) fail("VirtualProtect (restore)");
    FlushInstructionCache(GetCurrentProcess(), function, size);
}

/* The executable's mapped image copied into private memory (header page zeroed when asked). */
static BYTE *copy_image(DWORD protect, int wipe_header)
{
    BYTE *base = (BYTE *)GetModuleHandleA(NULL);
    IMAGE_NT_HEADERS *nt = (IMAGE_NT_HEADERS *)(base + ((IMAGE_DOS_HEADER *)base)->e_lfanew);
    SIZE_T size = nt->OptionalHeader.SizeOfImage;
    DWORD old;
    BYTE *copy = VirtualAlloc(NULL, size, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE);
    MEMORY_BASIC_INFORMATION mbi;
    SIZE_T offset;
    if (!copy) fail("VirtualAlloc");
    for (offset = 0; offset < size; offset += mbi.RegionSize) {  /* only the pages the image has */
        if (!VirtualQuery(base + offset, &mbi, sizeof(mbi))) fail("VirtualQuery");
        if (mbi.State == MEM_COMMIT && !(mbi.Protect & (PAGE_NOACCESS | PAGE_GUARD)))
            memcpy(copy + offset, base + offset, mbi.RegionSize < size - offset ? mbi.RegionSize : size - offset);
    }
    if (wipe_header) memset(copy, 0, 0x1000);
    if (!VirtualProtect(copy, size, protect, &old)) fail("VirtualProtect (copy)");
    return copy;
}

int main(void)
{
    static cf_program prog = {"implants"};
    static const BYTE amsi_patch[] = {0xb8, 0x57, 0x00, 0x07, 0x80, 0xc3};
    static const BYTE etw_patch[] = {0xc3};
    static const BYTE shellcode[] = {0x53, 0x48, 0x83, 0xec, 0x20, 0xff, 0xd1, 0xeb, 0xfe};
    HMODULE amsi = LoadLibraryA("amsi.dll");
    void *scan = amsi ? (void *)GetProcAddress(amsi, "AmsiScanBuffer") : NULL;
    void *etw = (void *)GetProcAddress(GetModuleHandleA("ntdll.dll"), "EtwEventWrite");
    BYTE *rwx, *pe_copy, *pe_wiped;
    cf_thread *hwbp, *watch, *queued, *running;
    static cf_callers chain;
    BYTE *apc_code;
    int i;
    char *extra;

    if (!scan || !etw) fail("finding AmsiScanBuffer and EtwEventWrite");
    never = CreateEventA(NULL, TRUE, FALSE, NULL);
    hwbp = cf_add_thread(&prog, "hwbp_amsi", wait_main, NULL, 0);
    cf_in_ntdll(hwbp);
    watch = cf_add_thread(&prog, "hwbp_watch", wait_main, NULL, 0);
    cf_in_ntdll(watch);
    queued = cf_add_thread(&prog, "apc_queued", wait_main, NULL, 0);
    cf_in_ntdll(queued);
    if (!cf_wait_in_place(hwbp, 10000) || !cf_wait_in_place(watch, 10000) || !cf_wait_in_place(queued, 10000))
        fail("waiting for the threads");

    set_breakpoint(hwbp, (DWORD64)(ULONG_PTR)scan, 0x1);                           /* L0, execute */
    set_breakpoint(watch, (DWORD64)(ULONG_PTR)&watched_value, 0x1 | (0xD << 16));  /* L0, write, 8 bytes */
    hwbp->note = "Dr0 = amsi!AmsiScanBuffer, execute, enabled in Dr7";
    watch->note = "Dr0 = a global variable, write watchpoint";

    rwx = VirtualAlloc(NULL, 0x1000, MEM_COMMIT | MEM_RESERVE, PAGE_EXECUTE_READWRITE);
    if (!rwx) fail("VirtualAlloc (RWX)");
    memcpy(rwx, shellcode, sizeof(shellcode));
    if (!QueueUserAPC((PAPCFUNC)rwx, queued->handle, (ULONG_PTR)Sleep)) fail("QueueUserAPC");
    queued->note = "non-alertable wait with a user APC queued into RWX shellcode";

    running = cf_add_thread(&prog, "apc_running", alertable_main, NULL, 0);
    cf_in_ntdll(running);
    apc_code = place_apc_code();
    if (!apc_code) fail("placing the APC code");
    if (!cf_wait_in_place(running, 10000)) fail("waiting for the alertable thread");
    if (!QueueUserAPC((PAPCFUNC)apc_code, running->handle, (ULONG_PTR)Sleep)) fail("QueueUserAPC (running)");
    Sleep(200);  /* the APC runs at once: the thread leaves SleepEx and sits in the shellcode's Sleep */
    if (!cf_wait_in_place(running, 10000) || !cf_unwind_thread(running->handle, &chain)) fail("unwinding the APC");
    for (i = 1; i < chain.n && chain.frames[i] != apc_code + APC_RETURN_SITE; i++)
        ;
    if (i == chain.n) fail("finding the APC shellcode in the running thread's stack");
    cf_expect_outer(running, &chain);
    snprintf(running->extra_json, sizeof(running->extra_json), ", \"apc_code\": \"0x%llx\"",
             (unsigned long long)(ULONG_PTR)apc_code);
    running->note = "an APC into RWX shellcode running on an interrupted alertable SleepEx, in Sleep";

    patch(scan, amsi_patch, sizeof(amsi_patch));
    patch(etw, etw_patch, sizeof(etw_patch));
    pe_copy = copy_image(PAGE_EXECUTE_READWRITE, 0);
    pe_wiped = copy_image(PAGE_EXECUTE_READ, 1);

    extra = queued->extra_json;
    snprintf(extra, sizeof(queued->extra_json),
             ", \"amsi_scan_buffer\": \"0x%llx\", \"etw_event_write\": \"0x%llx\", \"shellcode\": \"0x%llx\""
             ", \"pe_copy\": \"0x%llx\", \"pe_wiped\": \"0x%llx\", \"watched\": \"0x%llx\"",
             (unsigned long long)(ULONG_PTR)scan, (unsigned long long)(ULONG_PTR)etw,
             (unsigned long long)(ULONG_PTR)rwx, (unsigned long long)(ULONG_PTR)pe_copy,
             (unsigned long long)(ULONG_PTR)pe_wiped, (unsigned long long)(ULONG_PTR)&watched_value);
    return cf_ready_and_wait(&prog);
}
