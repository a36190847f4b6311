/*
 * An implant asleep the way Ekko leaves it. A shellcode-like routine in private memory calls
 * Sleep through a register (sleep_routine.h, as in shellcode.c); once its thread sleeps, the
 * program does what the implant's timer chain would: it makes the routine's memory
 * PAGE_READWRITE (code that cannot run while it sleeps), and it leaves in private memory the
 * chain's last step, a CONTEXT record whose RIP is ntdll!NtContinue and whose RSP is the sleeping
 * thread's, ready to resume it.
 *
 * Ground truth per thread: the return site inside the routine (now RW), the return into
 * call_shellcode, then the callers from RtlCaptureStackBackTrace. The ready line also gives the
 * record's address.
 */
#include "common.h"
#include "sleep_routine.h"

typedef struct {
    unsigned char *page;
    void *sleep;
    cf_callers callers;
} sleeper_job;

static DWORD WINAPI sleeper_thread(LPVOID arg)
{
    sleeper_job *job = arg;
    call_shellcode(job->page + CODE_OFFSET, job->sleep, &job->callers);
    return 0;
}

static unsigned char *place_code(void)
{
    unsigned char *page = VirtualAlloc(NULL, 0x2000, MEM_COMMIT | MEM_RESERVE, PAGE_EXECUTE_READWRITE);
    if (!page) {
        fprintf(stderr, "VirtualAlloc failed: %lu\n", GetLastError());
        ExitProcess(3);
    }
    memset(page, 0x90, 0x2000);
    memcpy(page + CODE_OFFSET, sleep_routine, sizeof(sleep_routine));
    FlushInstructionCache(GetCurrentProcess(), page, 0x2000);
    return page;
}

/* The chain's NtContinue step: the sleeping thread's own context, RIP set to NtContinue. */
static CONTEXT *leave_context_record(HANDLE thread)
{
    CONTEXT *record = VirtualAlloc(NULL, 0x1000, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE);
    if (!record) {
        fprintf(stderr, "VirtualAlloc failed: %lu\n", GetLastError());
        ExitProcess(3);
    }
    record->ContextFlags = CONTEXT_FULL;
    if (SuspendThread(thread) == (DWORD)-1 || !GetThreadContext(thread, record)) {
        fprintf(stderr, "GetThreadContext failed: %lu\n", GetLastError());
        ExitProcess(3);
    }
    ResumeThread(thread);
    record->ContextFlags = CONTEXT_FULL;
    record->Rip = (DWORD64)(ULONG_PTR)GetProcAddress(GetModuleHandleA("ntdll.dll"), "NtContinue");
    return record;
}

int main(void)
{
    static cf_program prog = {"sleepmask"};
    static sleeper_job job;
    cf_thread *t;
    CONTEXT *record;
    DWORD old;

    job.page = place_code();
    job.sleep = (void *)GetProcAddress(GetModuleHandleA("kernel32.dll"), "Sleep");
    t = cf_add_thread(&prog, "sleeper_rw", sleeper_thread, &job, 0);
    cf_in_ntdll(t);
    t->note = "Sleep called from a routine whose memory was made PAGE_READWRITE while it sleeps";
    if (!cf_wait_in_place(t, 10000)) {
        fprintf(stderr, "the sleeper never reached Sleep\n");
        return 3;
    }
    if (!VirtualProtect(job.page, 0x2000, PAGE_READWRITE, &old)) {
        fprintf(stderr, "VirtualProtect failed: %lu\n", GetLastError());
        return 3;
    }
    record = leave_context_record(t->handle);
    snprintf(t->extra_json, sizeof(t->extra_json), ", \"routine\": \"0x%llx\", \"context_record\": \"0x%llx\"",
             (unsigned long long)(ULONG_PTR)(job.page + CODE_OFFSET), (unsigned long long)(ULONG_PTR)record);
    cf_expect_add(t, (DWORD64)(ULONG_PTR)job.page + CODE_OFFSET + RETURN_SITE, "unbacked-rw-return");
    cf_expect_add(t, (DWORD64)(ULONG_PTR)call_shellcode_ret, "image-return");
    cf_expect_callers(t, &job.callers);
    return cf_ready_and_wait(&prog);
}
