/*
 * Threads parked inside exception handling: the exception was raised, the
 * dispatcher (ntdll!KiUserExceptionDispatcher, then RtlDispatchException)
 * called a handler, and the handler waits forever. The stack holds the
 * handler, the dispatcher and, under it, the context of the code that raised.
 *
 *   veh_access_violation   a write to address 0 caught by a vectored handler
 *   veh_raise              RaiseException caught by the same vectored handler
 *   seh_handler            RaiseException inside seh_guarded (exceptions.S), whose
 *                          .pdata names a language-specific handler, which waits
 *   unhandled_filter       an exception nobody handles: the top-level filter
 *                          (SetUnhandledExceptionFilter) is called and waits
 *
 * Each thread records its callers before it raises (cf_capture_callers): the
 * tail of the reference, above the function that raised, whatever the
 * debuggers make of the dispatcher's frame. Each handler also reports the RIP
 * of the context it was given (`fault_rip` in the ready line): for the access
 * violation, the faulting instruction itself, which the frame after
 * KiUserExceptionDispatcher must show (not a return address).
 */
#include "common.h"

#define RAISED_CODE 0xE0C0FFEE

typedef struct {
    const char *role;
    volatile LONG in_state;
    DWORD tid;
    DWORD64 fault_rip;
    cf_callers callers;
} parked;

static parked av = {"veh_access_violation"}, raised = {"veh_raise"}, seh = {"seh_handler"},
              unhandled = {"unhandled_filter"};
static volatile LONG sink;

void seh_guarded(cf_callers *callers);

__attribute__((noinline)) static void park(parked *p, const CONTEXT *ctx)
{
    HANDLE never = CreateEventA(NULL, TRUE, FALSE, NULL);
    p->fault_rip = ctx->Rip;
    InterlockedExchange(&p->in_state, 1);
    for (;;) WaitForSingleObject(never, INFINITE);
}

static LONG CALLBACK vectored_handler(EXCEPTION_POINTERS *info)
{
    DWORD tid = GetCurrentThreadId();
    if (tid == av.tid && info->ExceptionRecord->ExceptionCode == EXCEPTION_ACCESS_VIOLATION)
        park(&av, info->ContextRecord);
    if (tid == raised.tid && info->ExceptionRecord->ExceptionCode == RAISED_CODE) park(&raised, info->ContextRecord);
    return EXCEPTION_CONTINUE_SEARCH;
}

/* The language-specific handler named by seh_guarded's .pdata (called for the dispatch, not the unwind). */
EXCEPTION_DISPOSITION seh_blocking_handler(EXCEPTION_RECORD *rec, void *frame, CONTEXT *ctx, void *dispatch)
{
    if (!(rec->ExceptionFlags & (EXCEPTION_UNWINDING | EXCEPTION_EXIT_UNWIND)) && rec->ExceptionCode == RAISED_CODE)
        park(&seh, ctx);
    return ExceptionContinueSearch;
}

static LONG WINAPI top_level_filter(EXCEPTION_POINTERS *info)
{
    if (GetCurrentThreadId() == unhandled.tid) park(&unhandled, info->ContextRecord);
    return EXCEPTION_CONTINUE_SEARCH;
}

__attribute__((noinline)) static void write_null(parked *p)
{
    cf_capture_callers(&p->callers);
    *(volatile int *)(ULONG_PTR)sink = 1;
    sink++;
}

__attribute__((noinline)) static void raise_exception(parked *p)
{
    cf_capture_callers(&p->callers);
    RaiseException(RAISED_CODE, 0, 0, NULL);
    sink++;
}

static DWORD WINAPI av_main(LPVOID arg)
{
    av.tid = GetCurrentThreadId();
    write_null(&av);
    return 0;
}

static DWORD WINAPI raise_main(LPVOID arg)
{
    parked *p = arg;
    p->tid = GetCurrentThreadId();
    raise_exception(p);
    return 0;
}

static DWORD WINAPI seh_main(LPVOID arg)
{
    seh.tid = GetCurrentThreadId();
    seh_guarded(&seh.callers);
    return 0;
}

static void add(cf_program *prog, parked *p, LPTHREAD_START_ROUTINE fn, const char *note)
{
    cf_thread *t = cf_add_thread(prog, p->role, fn, p, 0);
    cf_in_ntdll(t);
    t->state = &p->in_state;
    t->note = note;
}

/* Once the thread is parked: its callers as the reference's tail, and the context's RIP. */
static void expect_parked(cf_thread *t, const parked *p)
{
    cf_expect_callers(t, &p->callers);
    snprintf(t->extra_json, sizeof(t->extra_json), ", \"fault_rip\": \"0x%llx\"", (unsigned long long)p->fault_rip);
}

int main(void)
{
    static cf_program prog = {"exceptions"};
    static parked *all[] = {&av, &raised, &seh, &unhandled};
    int i;

    AddVectoredExceptionHandler(1, vectored_handler);
    SetUnhandledExceptionFilter(top_level_filter);
    add(&prog, &av, av_main, "access violation, parked in a vectored exception handler");
    add(&prog, &raised, raise_main, "RaiseException, parked in a vectored exception handler");
    add(&prog, &seh, seh_main, "RaiseException, parked in a frame-based (.pdata) exception handler");
    add(&prog, &unhandled, raise_main, "unhandled RaiseException, parked in the top-level exception filter");
    for (i = 0; i < prog.n_threads; i++) {
        if (!cf_wait_in_place(&prog.threads[i], 10000)) break;
        expect_parked(&prog.threads[i], all[i]);
    }
    return cf_ready_and_wait(&prog);
}
