/*
 * Direct system calls from private RWX memory (what syscall-stub malware does):
 * a stub `mov r10, rcx; mov eax, 0x23; syscall; ret` copied into a
 * VirtualAlloc'd PAGE_EXECUTE_READWRITE page, once with each encoding of
 * mov r10, rcx (4c 8b d1 and 49 89 ca). Under Wine the syscall instruction goes
 * to the Linux kernel: 0x23 is nanosleep, and RDI points at a timespec of about
 * 35,000 years, so each thread blocks with RIP right after the syscall.
 *
 * Ground truth printed per thread: the stub address, frame 0 = stub + 10 (after
 * `0f 05`), frame 1 = the return into rwx_syscall_loop, then the callers Wine's
 * RtlCaptureStackBackTrace reported.
 */
#include "common.h"

typedef struct {
    long long tv_sec;
    long long tv_nsec;
} linux_timespec;

void rwx_syscall_loop(void *stub, const linux_timespec *ts, cf_callers *callers);
extern char rwx_syscall_loop_ret[];

static const linux_timespec forever = {1LL << 40, 0};

static const unsigned char stub_4c8bd1[] = {
    0x4c, 0x8b, 0xd1,             /* mov r10, rcx */
    0xb8, 0x23, 0x00, 0x00, 0x00, /* mov eax, 0x23 */
    0x0f, 0x05,                   /* syscall */
    0xc3,                         /* ret */
};
static const unsigned char stub_4989ca[] = {
    0x49, 0x89, 0xca,             /* mov r10, rcx (the other encoding) */
    0xb8, 0x23, 0x00, 0x00, 0x00,
    0x0f, 0x05,
    0xc3,
};
#define STUB_OFFSET 0x100          /* int3 filler before the stub: 64 leading bytes exist */
#define AFTER_SYSCALL 10

typedef struct {
    unsigned char *stub;
    cf_callers callers;
} syscall_job;

static unsigned char *place_stub(const unsigned char *code, size_t size)
{
    unsigned char *page = VirtualAlloc(NULL, 0x1000, MEM_COMMIT | MEM_RESERVE, PAGE_EXECUTE_READWRITE);
    if (!page) {
        fprintf(stderr, "VirtualAlloc failed: %lu\n", GetLastError());
        ExitProcess(3);
    }
    memset(page, 0xcc, 0x1000);
    memcpy(page + STUB_OFFSET, code, size);
    FlushInstructionCache(GetCurrentProcess(), page, 0x1000);
    return page + STUB_OFFSET;
}

static DWORD WINAPI syscall_thread(LPVOID arg)
{
    syscall_job *job = arg;
    rwx_syscall_loop(job->stub, &forever, &job->callers);
    return 0;
}

static void add_syscall_thread(cf_program *prog, const char *role, syscall_job *job,
                               const unsigned char *code, size_t size)
{
    cf_thread *t;
    job->stub = place_stub(code, size);
    t = cf_add_thread(prog, role, syscall_thread, job, 0);
    t->rip_lo = (DWORD64)(ULONG_PTR)job->stub + AFTER_SYSCALL;
    t->rip_hi = t->rip_lo + 1;
    t->note = "direct syscall (Linux nanosleep under Wine) from private RWX memory";
    snprintf(t->extra_json, sizeof(t->extra_json), ", \"stub\": \"0x%llx\", \"stub_bytes\": \"%02x%02x%02x\"",
             (unsigned long long)(ULONG_PTR)job->stub, code[0], code[1], code[2]);
}

/* The callers are recorded by the threads themselves; fill expect[] once they are in place. */
static void add_expectations(cf_thread *t, const syscall_job *job)
{
    t->expect_first_index = 0;
    cf_expect_add(t, (DWORD64)(ULONG_PTR)job->stub + AFTER_SYSCALL, "unbacked-rwx-syscall");
    cf_expect_add(t, (DWORD64)(ULONG_PTR)rwx_syscall_loop_ret, "image-return");
    cf_expect_callers(t, &job->callers);
}

int main(void)
{
    static cf_program prog = {"rwx_syscall"};
    static syscall_job jobs[2];
    int i;

    add_syscall_thread(&prog, "rwx_syscall_4c8bd1", &jobs[0], stub_4c8bd1, sizeof(stub_4c8bd1));
    add_syscall_thread(&prog, "rwx_syscall_4989ca", &jobs[1], stub_4989ca, sizeof(stub_4989ca));
    for (i = 0; i < prog.n_threads; i++) {
        if (!cf_wait_in_place(&prog.threads[i], 10000)) break;
        add_expectations(&prog.threads[i], &jobs[i]);
    }
    return cf_ready_and_wait(&prog);
}
