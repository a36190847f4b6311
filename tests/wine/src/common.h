/*
 * Shared by the Wine ground-truth programs: start threads, wait until each one
 * really sits where the test wants it (its RIP inside a known range, checked
 * with GetThreadContext, not guessed with a sleep), then print ONE JSON line
 * describing the threads and block forever.
 *
 * The capture harness (tests/wine/capture.py) reads that line, then attaches
 * winedbg and writes the dump: by then every thread must be in place, or the
 * dump and the debugger would disagree for a boring reason.
 */
#ifndef CF_COMMON_H
#define CF_COMMON_H

#include <windows.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define CF_MAX_THREADS 16
#define CF_MAX_EXPECT 32

typedef struct {
    DWORD64 address;
    const char *kind;
} cf_expect;

typedef struct {
    const char *role;
    HANDLE handle;
    DWORD tid;
    LPTHREAD_START_ROUTINE fn;
    void *arg;
    volatile LONG started;    /* set by the thread itself, first thing */
    DWORD64 rip_lo, rip_hi;   /* the thread is in place when lo <= RIP < hi ... */
    int after_syscall;        /* ... and, if set, the two bytes before RIP are `0f 05` */
    volatile LONG *state;     /* ... and, if set, *state is non-zero (the thread reached its state) */
    const char *note;
    cf_expect expect[CF_MAX_EXPECT];
    int n_expect;
    int expect_first_index;   /* frame index of expect[0], or -1 when only the order is known */
    int expect_is_tail;       /* expect[] runs to the last frame of the stack */
    char extra_json[256];     /* more fields for the ready line, e.g. `, "stub": "0x..."` */
} cf_thread;

typedef struct {
    const char *program;
    cf_thread threads[CF_MAX_THREADS];
    int n_threads;
} cf_program;

/* The [lo, hi) range of a loaded module, from its PE header. */
static void cf_module_range(const char *name, DWORD64 *lo, DWORD64 *hi)
{
    BYTE *base = (BYTE *)GetModuleHandleA(name);
    IMAGE_NT_HEADERS *nt;
    if (!base) {
        fprintf(stderr, "module %s not loaded\n", name);
        ExitProcess(3);
    }
    nt = (IMAGE_NT_HEADERS *)(base + ((IMAGE_DOS_HEADER *)base)->e_lfanew);
    *lo = (DWORD64)(ULONG_PTR)base;
    *hi = *lo + nt->OptionalHeader.SizeOfImage;
}

/* Every thread starts here: the flag tells main the thread runs its own code. */
__attribute__((noinline, optimize("no-optimize-sibling-calls"))) static DWORD WINAPI cf_thread_main(LPVOID p)
{
    cf_thread *t = p;
    DWORD rc;
    InterlockedExchange(&t->started, 1);
    rc = t->fn(t->arg);
    return rc;
}

static cf_thread *cf_add_thread(cf_program *prog, const char *role, LPTHREAD_START_ROUTINE fn,
                                void *arg, SIZE_T stack_reserve)
{
    cf_thread *t = &prog->threads[prog->n_threads++];
    memset(t, 0, sizeof(*t));
    t->role = role;
    t->fn = fn;
    t->arg = arg;
    t->expect_first_index = -1;
    t->handle = CreateThread(NULL, stack_reserve, cf_thread_main, t,
                             stack_reserve ? STACK_SIZE_PARAM_IS_A_RESERVATION : 0, &t->tid);
    if (!t->handle) {
        fprintf(stderr, "CreateThread(%s) failed: %lu\n", role, GetLastError());
        ExitProcess(3);
    }
    return t;
}

/*
 * A thread the program did not create (a thread-pool worker, found by the
 * callback it runs): opened by its id so that its RIP can be checked like any
 * other. `started` is set at once: the thread already runs.
 */
static cf_thread *cf_adopt_thread(cf_program *prog, const char *role, DWORD tid)
{
    cf_thread *t = &prog->threads[prog->n_threads++];
    memset(t, 0, sizeof(*t));
    t->role = role;
    t->tid = tid;
    t->expect_first_index = -1;
    t->started = 1;
    t->handle = OpenThread(THREAD_SUSPEND_RESUME | THREAD_GET_CONTEXT | THREAD_QUERY_INFORMATION, FALSE, tid);
    if (!t->handle) {
        fprintf(stderr, "OpenThread(%s, %lu) failed: %lu\n", role, tid, GetLastError());
        ExitProcess(3);
    }
    return t;
}

/*
 * A thread blocked in a system call sits, under Wine as on Windows, right
 * after a `syscall` instruction in the stub of the module that made it (ntdll,
 * or win32u for the window manager's calls). Requiring the `0f 05` keeps a
 * thread still starting up (also in ntdll) from counting.
 */
static void cf_after_syscall_in(cf_thread *t, const char *module)
{
    cf_module_range(module, &t->rip_lo, &t->rip_hi);
    t->after_syscall = 1;
}

static void cf_in_ntdll(cf_thread *t)
{
    cf_after_syscall_in(t, "ntdll.dll");
}

/* Blocks the calling thread forever: the end of every test thread's own code. */
static void cf_block_forever(void)
{
    HANDLE never = CreateEventA(NULL, TRUE, FALSE, NULL);
    for (;;) WaitForSingleObject(never, INFINITE);
}

static int cf_rip_in_place(const cf_thread *t, DWORD64 rip)
{
    const unsigned char *p = (const unsigned char *)(ULONG_PTR)rip;
    if (t->state && !*t->state) return 0;
    if (rip < t->rip_lo || rip >= t->rip_hi) return 0;
    return !t->after_syscall || (rip >= t->rip_lo + 2 && p[-2] == 0x0f && p[-1] == 0x05);
}

static void cf_expect_add(cf_thread *t, DWORD64 address, const char *kind)
{
    if (t->n_expect < CF_MAX_EXPECT) {
        t->expect[t->n_expect].address = address;
        t->expect[t->n_expect].kind = kind;
        t->n_expect++;
    }
}

/*
 * The callers of a thread procedure, as Wine's own RtlCaptureStackBackTrace
 * (RtlVirtualUnwind over .pdata) sees them: the ground truth for the part of a
 * stack above code that winedbg cannot unwind through. Taken in the thread
 * procedure itself, before it calls anything that never returns.
 */
typedef struct {
    void *frames[24];
    int n;
} cf_callers;

/*
 * Records the callers of the function that calls this one (F): the return
 * address into F's caller first. Index 0 of RtlCaptureStackBackTrace is the
 * return into this function and index 1 the return into F, hence skip 2.
 * Not static: the assembly helpers call it too.
 */
__attribute__((noinline)) void cf_capture_callers(cf_callers *c)
{
    int i, n = RtlCaptureStackBackTrace(2, 24, c->frames, NULL);
    /* Wine's capture runs on past the outermost frame: a 0 return address ends the stack. */
    for (i = 0; i < n && c->frames[i]; i++)
        ;
    c->n = i;
}

static void cf_expect_callers(cf_thread *t, const cf_callers *c)
{
    int i;
    for (i = 0; i < c->n; i++) cf_expect_add(t, (DWORD64)(ULONG_PTR)c->frames[i], "captured");
    t->expect_is_tail = 1;
}

/*
 * The stack of another thread of this process, suspended, as Wine's own
 * RtlVirtualUnwind walks it from its context: frames[0] is its RIP, then each
 * return address (a function without unwind data is taken as a leaf). The
 * ground truth for the outer part of a thread that a user-mode callback will
 * later enter: the callback runs below this part, which does not change.
 */
static int cf_unwind_thread(HANDLE thread, cf_callers *c)
{
    CONTEXT ctx;
    BOOL ok;
    memset(&ctx, 0, sizeof(ctx));
    ctx.ContextFlags = CONTEXT_FULL;
    c->n = 0;
    if (SuspendThread(thread) == (DWORD)-1) return 0;
    ok = GetThreadContext(thread, &ctx);
    while (ok && ctx.Rip && c->n < 24) {
        DWORD64 base, establisher;
        void *handler_data;
        RUNTIME_FUNCTION *fn = RtlLookupFunctionEntry(ctx.Rip, &base, NULL);
        c->frames[c->n++] = (void *)(ULONG_PTR)ctx.Rip;
        if (fn) {
            RtlVirtualUnwind(UNW_FLAG_NHANDLER, base, ctx.Rip, fn, &ctx, &handler_data, &establisher, NULL);
        } else {
            ctx.Rip = *(DWORD64 *)(ULONG_PTR)ctx.Rsp;
            ctx.Rsp += 8;
        }
    }
    ResumeThread(thread);
    return ok && c->n > 1;
}

/*
 * The outer part of a stack (cf_unwind_thread) as the tail of the reference,
 * without frames[0]: the RIP of a thread blocked in a system call is not on its
 * user stack (Wine keeps it in its own syscall frame), so no stack walker can
 * show it once a callback runs below; the return addresses above it are.
 */
static void cf_expect_outer(cf_thread *t, const cf_callers *outer)
{
    int i;
    for (i = 1; i < outer->n; i++) cf_expect_add(t, (DWORD64)(ULONG_PTR)outer->frames[i], "outer");
    t->expect_is_tail = 1;
}

/* Waits until RIP of the thread lies in [rip_lo, rip_hi); returns the RIP or 0 on timeout. */
static DWORD64 cf_wait_in_place(cf_thread *t, DWORD timeout_ms)
{
    DWORD waited = 0;
    CONTEXT ctx;
    for (;;) {
        memset(&ctx, 0, sizeof(ctx));
        ctx.ContextFlags = CONTEXT_CONTROL;
        if (SuspendThread(t->handle) != (DWORD)-1) {
            BOOL ok = GetThreadContext(t->handle, &ctx);
            ResumeThread(t->handle);
            if (ok && t->started && cf_rip_in_place(t, ctx.Rip)) return ctx.Rip;
        }
        if (waited >= timeout_ms) return 0;
        Sleep(20);
        waited += 20;
    }
}

static void cf_json_thread(const cf_thread *t)
{
    int i;
    printf("{\"tid\": %lu, \"role\": \"%s\"", t->tid, t->role);
    if (t->note) printf(", \"note\": \"%s\"", t->note);
    printf(", \"rip_range\": [\"0x%llx\", \"0x%llx\"]", (unsigned long long)t->rip_lo,
           (unsigned long long)t->rip_hi);
    printf(", \"expect_first_index\": %s", t->expect_first_index >= 0 ? "" : "null");
    if (t->expect_first_index >= 0) printf("%d", t->expect_first_index);
    printf(", \"expect_is_tail\": %s, \"expect\": [", t->expect_is_tail ? "true" : "false");
    for (i = 0; i < t->n_expect; i++)
        printf("%s{\"address\": \"0x%llx\", \"kind\": \"%s\"}", i ? ", " : "",
               (unsigned long long)t->expect[i].address, t->expect[i].kind);
    printf("]%s}", t->extra_json);
}

/*
 * Waits for every thread to be in place and prints the ready line; 0 when it
 * did, 4 (after a `"ready": false` line naming the thread) when not.
 */
static int cf_ready(cf_program *prog)
{
    int i;
    for (i = 0; i < prog->n_threads; i++) {
        if (!cf_wait_in_place(&prog->threads[i], 10000)) {
            printf("{\"ready\": false, \"program\": \"%s\", \"error\": \"thread %s never got in place\"}\n",
                   prog->program, prog->threads[i].role);
            fflush(stdout);
            return 4;
        }
    }
    /* Once more after a pause: a thread must still be there, not passing through. */
    Sleep(100);
    for (i = 0; i < prog->n_threads; i++) {
        if (!cf_wait_in_place(&prog->threads[i], 10000)) {
            printf("{\"ready\": false, \"program\": \"%s\", \"error\": \"thread %s left its place\"}\n",
                   prog->program, prog->threads[i].role);
            fflush(stdout);
            return 4;
        }
    }
    printf("{\"ready\": true, \"program\": \"%s\", \"pid\": %lu, \"main_tid\": %lu, \"threads\": [",
           prog->program, GetCurrentProcessId(), GetCurrentThreadId());
    for (i = 0; i < prog->n_threads; i++) {
        if (i) printf(", ");
        cf_json_thread(&prog->threads[i]);
    }
    printf("]}\n");
    fflush(stdout);
    return 0;
}

/*
 * cf_ready, then blocks the main thread forever (in WaitForSingleObject on an
 * event nobody sets: one more wait through kernel32 and kernelbase for the tests).
 */
static int cf_ready_and_wait(cf_program *prog)
{
    HANDLE never;
    int rc = cf_ready(prog);
    if (rc) return rc;
    never = CreateEventA(NULL, TRUE, FALSE, NULL);
    WaitForSingleObject(never, INFINITE);
    return 0;
}

#endif
