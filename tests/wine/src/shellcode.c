/*
 * Shellcode-like routines in private memory that call Sleep through a register:
 * the stack has an unbacked frame in the middle, between kernelbase!Sleep and
 * the image code that called the shellcode. One copy lives in RWX memory, one
 * in memory made R-X after writing (VirtualProtect), as loaders do. The
 * routine is sleep_routine.h's.
 *
 * Ground truth printed per thread: the return site inside the shellcode, the
 * return into call_shellcode, then the callers from RtlCaptureStackBackTrace.
 */
#include "common.h"
#include "sleep_routine.h"

typedef struct {
    unsigned char *code;
    void *sleep;
    cf_callers callers;
} shellcode_job;

static unsigned char *place_code(DWORD final_protect)
{
    DWORD old;
    unsigned char *page = VirtualAlloc(NULL, 0x2000, MEM_COMMIT | MEM_RESERVE,
                                       final_protect == PAGE_EXECUTE_READWRITE ? PAGE_EXECUTE_READWRITE
                                                                               : PAGE_READWRITE);
    if (!page) {
        fprintf(stderr, "VirtualAlloc failed: %lu\n", GetLastError());
        ExitProcess(3);
    }
    memset(page, 0x90, 0x2000);
    memcpy(page + CODE_OFFSET, sleep_routine, sizeof(sleep_routine));
    if (final_protect != PAGE_EXECUTE_READWRITE && !VirtualProtect(page, 0x2000, final_protect, &old)) {
        fprintf(stderr, "VirtualProtect failed: %lu\n", GetLastError());
        ExitProcess(3);
    }
    FlushInstructionCache(GetCurrentProcess(), page, 0x2000);
    return page + CODE_OFFSET;
}

static DWORD WINAPI shellcode_thread(LPVOID arg)
{
    shellcode_job *job = arg;
    call_shellcode(job->code, job->sleep, &job->callers);
    return 0;
}

static void add_shellcode_thread(cf_program *prog, const char *role, shellcode_job *job, DWORD protect)
{
    cf_thread *t;
    job->code = place_code(protect);
    job->sleep = (void *)GetProcAddress(GetModuleHandleA("kernel32.dll"), "Sleep");
    t = cf_add_thread(prog, role, shellcode_thread, job, 0);
    cf_in_ntdll(t);
    t->note = protect == PAGE_EXECUTE_READWRITE ? "Sleep called from shellcode in private RWX memory"
                                                : "Sleep called from shellcode in private R-X memory";
    snprintf(t->extra_json, sizeof(t->extra_json), ", \"shellcode\": \"0x%llx\"",
             (unsigned long long)(ULONG_PTR)job->code);
}

static void add_expectations(cf_thread *t, const shellcode_job *job, const char *kind)
{
    cf_expect_add(t, (DWORD64)(ULONG_PTR)job->code + RETURN_SITE, kind);
    cf_expect_add(t, (DWORD64)(ULONG_PTR)call_shellcode_ret, "image-return");
    cf_expect_callers(t, &job->callers);
}

int main(void)
{
    static cf_program prog = {"shellcode"};
    static shellcode_job jobs[2];
    static const char *kinds[2] = {"unbacked-rwx-return", "unbacked-rx-return"};
    int i;

    add_shellcode_thread(&prog, "shellcode_rwx", &jobs[0], PAGE_EXECUTE_READWRITE);
    add_shellcode_thread(&prog, "shellcode_rx", &jobs[1], PAGE_EXECUTE_READ);
    for (i = 0; i < prog.n_threads; i++) {
        if (!cf_wait_in_place(&prog.threads[i], 10000)) break;
        add_expectations(&prog.threads[i], &jobs[i], kinds[i]);
    }
    return cf_ready_and_wait(&prog);
}
