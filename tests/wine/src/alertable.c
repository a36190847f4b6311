/*
 * Alertable waits, and a thread running an APC delivered to one:
 *
 *   sleepex_alertable   SleepEx(INFINITE, TRUE), through kernel32's import
 *   wfso_ex_alertable   WaitForSingleObjectEx(event, INFINITE, TRUE)
 *   wfmo_ex_alertable   WaitForMultipleObjectsEx(2 events, any, INFINITE, TRUE)
 *   apc_running         a thread in SleepEx(INFINITE, TRUE) that was sent an APC
 *                       (QueueUserAPC): the APC runs on top of the interrupted wait,
 *                       entered through ntdll!KiUserApcDispatcher, and itself waits
 *                       (non-alertably) in WaitForSingleObject
 *
 * The reference for apc_running below the dispatcher is the thread's stack
 * as Wine's unwinder saw it in SleepEx before the APC was queued.
 */
#include "common.h"

static HANDLE never[2];
static volatile LONG apc_entered;
static cf_callers apc_outer;

__attribute__((noinline)) static void sleep_alertable(void)
{
    for (;;) SleepEx(INFINITE, TRUE);
}

static DWORD WINAPI sleepex_main(LPVOID arg)
{
    sleep_alertable();
    return 0;
}

static DWORD WINAPI wfso_ex_main(LPVOID arg)
{
    for (;;) WaitForSingleObjectEx(never[0], INFINITE, TRUE);
    return 0;
}

static DWORD WINAPI wfmo_ex_main(LPVOID arg)
{
    for (;;) WaitForMultipleObjectsEx(2, never, FALSE, INFINITE, TRUE);
    return 0;
}

static void CALLBACK blocking_apc(ULONG_PTR arg)
{
    InterlockedExchange(&apc_entered, 1);
    cf_block_forever();
}

int main(void)
{
    static cf_program prog = {"alertable"};
    cf_thread *t;

    never[0] = CreateEventA(NULL, TRUE, FALSE, NULL);
    never[1] = CreateEventA(NULL, TRUE, FALSE, NULL);
    t = cf_add_thread(&prog, "sleepex_alertable", sleepex_main, NULL, 0);
    cf_in_ntdll(t);
    t = cf_add_thread(&prog, "wfso_ex_alertable", wfso_ex_main, NULL, 0);
    cf_in_ntdll(t);
    t = cf_add_thread(&prog, "wfmo_ex_alertable", wfmo_ex_main, NULL, 0);
    cf_in_ntdll(t);

    t = cf_add_thread(&prog, "apc_running", sleepex_main, NULL, 0);
    cf_in_ntdll(t);
    if (!cf_wait_in_place(t, 10000) || !cf_unwind_thread(t->handle, &apc_outer)) {
        fprintf(stderr, "apc_running never waited in SleepEx\n");
        return 3;
    }
    cf_expect_outer(t, &apc_outer);
    if (!QueueUserAPC(blocking_apc, t->handle, 0)) {
        fprintf(stderr, "QueueUserAPC failed: %lu\n", GetLastError());
        return 3;
    }
    t->state = &apc_entered;
    t->note = "APC running on top of an alertable SleepEx, waiting in WaitForSingleObject";
    return cf_ready_and_wait(&prog);
}
