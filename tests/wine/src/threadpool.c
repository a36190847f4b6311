/*
 * Thread-pool threads, inside callbacks and waiting for work. Each callback
 * records its thread id, says it is in place and waits forever (so each one
 * holds a worker of its own); the program then checks that worker's RIP like
 * any thread it created.
 *
 *   tp_work          CreateThreadpoolWork + SubmitThreadpoolWork
 *   tp_simple        TrySubmitThreadpoolCallback
 *   tp_timer         CreateThreadpoolTimer, due after 10 ms
 *   tp_wait          CreateThreadpoolWait on an event that is set
 *   queue_work_item  QueueUserWorkItem
 *   timer_queue      CreateTimerQueueTimer, due after 10 ms
 *   idle_worker      the single worker of a private pool (minimum 1 thread, so it
 *                    never retires) after its one work item returned: a pool
 *                    thread waiting for work
 *
 * Wine's own pool threads (the timer and wait-queue threads) are in the dump
 * too and are compared like every other thread.
 */
#include "common.h"

typedef struct {
    const char *role;
    volatile LONG in_state;
    DWORD tid;
} job;

static HANDLE never;

/* Every blocking callback ends here: record the worker, say so, wait forever. */
__attribute__((noinline)) static void park(job *j)
{
    j->tid = GetCurrentThreadId();
    InterlockedExchange(&j->in_state, 1);
    for (;;) WaitForSingleObject(never, INFINITE);
}

static void CALLBACK work_cb(PTP_CALLBACK_INSTANCE inst, void *ctx, PTP_WORK work) { park(ctx); }
static void CALLBACK simple_cb(PTP_CALLBACK_INSTANCE inst, void *ctx) { park(ctx); }
static void CALLBACK timer_cb(PTP_CALLBACK_INSTANCE inst, void *ctx, PTP_TIMER timer) { park(ctx); }
static void CALLBACK wait_cb(PTP_CALLBACK_INSTANCE inst, void *ctx, PTP_WAIT wait, TP_WAIT_RESULT r) { park(ctx); }
static DWORD WINAPI work_item_cb(LPVOID ctx) { park(ctx); return 0; }
static void CALLBACK timer_queue_cb(PVOID ctx, BOOLEAN fired) { park(ctx); }

/* The idle worker's one work item: record the worker and return, leaving it idle. */
static void CALLBACK idle_cb(PTP_CALLBACK_INSTANCE inst, void *ctx, PTP_WORK work)
{
    job *j = ctx;
    j->tid = GetCurrentThreadId();
    InterlockedExchange(&j->in_state, 1);
}

static void fail(const char *what)
{
    fprintf(stderr, "%s failed: %lu\n", what, GetLastError());
    ExitProcess(3);
}

static void due_in_10ms(FILETIME *due)
{
    ULARGE_INTEGER rel;
    rel.QuadPart = (ULONGLONG)-100000;  /* relative, 100 ns units */
    due->dwLowDateTime = rel.LowPart;
    due->dwHighDateTime = rel.HighPart;
}

static void start_jobs(job *jobs)
{
    FILETIME due;
    PTP_WORK work;
    PTP_TIMER timer;
    PTP_WAIT wait;
    HANDLE set, timer_handle;
    PTP_POOL pool;
    TP_CALLBACK_ENVIRON env;

    if (!(work = CreateThreadpoolWork(work_cb, &jobs[0], NULL))) fail("CreateThreadpoolWork");
    SubmitThreadpoolWork(work);
    if (!TrySubmitThreadpoolCallback(simple_cb, &jobs[1], NULL)) fail("TrySubmitThreadpoolCallback");
    if (!(timer = CreateThreadpoolTimer(timer_cb, &jobs[2], NULL))) fail("CreateThreadpoolTimer");
    due_in_10ms(&due);
    SetThreadpoolTimer(timer, &due, 0, 0);
    set = CreateEventA(NULL, TRUE, TRUE, NULL);
    if (!(wait = CreateThreadpoolWait(wait_cb, &jobs[3], NULL))) fail("CreateThreadpoolWait");
    SetThreadpoolWait(wait, set, NULL);
    if (!QueueUserWorkItem(work_item_cb, &jobs[4], WT_EXECUTEDEFAULT)) fail("QueueUserWorkItem");
    if (!CreateTimerQueueTimer(&timer_handle, NULL, timer_queue_cb, &jobs[5], 10, 0, WT_EXECUTEDEFAULT))
        fail("CreateTimerQueueTimer");

    if (!(pool = CreateThreadpool(NULL))) fail("CreateThreadpool");
    SetThreadpoolThreadMaximum(pool, 1);
    if (!SetThreadpoolThreadMinimum(pool, 1)) fail("SetThreadpoolThreadMinimum");
    InitializeThreadpoolEnvironment(&env);
    SetThreadpoolCallbackPool(&env, pool);
    if (!(work = CreateThreadpoolWork(idle_cb, &jobs[6], &env))) fail("CreateThreadpoolWork (private pool)");
    SubmitThreadpoolWork(work);
}

int main(void)
{
    static cf_program prog = {"threadpool"};
    static job jobs[] = {
        {"tp_work"}, {"tp_simple"}, {"tp_timer"}, {"tp_wait"}, {"queue_work_item"}, {"timer_queue"},
        {"idle_worker"},
    };
    int i;
    DWORD waited;

    never = CreateEventA(NULL, TRUE, FALSE, NULL);
    start_jobs(jobs);
    for (i = 0; i < (int)(sizeof(jobs) / sizeof(jobs[0])); i++) {
        cf_thread *t;
        for (waited = 0; !jobs[i].in_state && waited < 10000; waited += 10) Sleep(10);
        if (!jobs[i].in_state) {
            printf("{\"ready\": false, \"program\": \"threadpool\", \"error\": \"%s never ran\"}\n", jobs[i].role);
            fflush(stdout);
            return 4;
        }
        t = cf_adopt_thread(&prog, jobs[i].role, jobs[i].tid);
        cf_in_ntdll(t);
    }
    prog.threads[6].note = "a private pool's only worker, idle after its work item returned";
    return cf_ready_and_wait(&prog);
}
