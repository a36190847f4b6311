/*
 * Drives chained.S: one thread waits in the second, chained part of a
 * function, one in a cold block whose unwind info is only a chain.
 */
#include "common.h"

void chained_fn(void *arg);
void chained_hot(void);
extern char chained_sleep_ret[], chained_cold_ret[];

static volatile LONG sink;

__attribute__((noinline)) static void call_chained_fn(void)
{
    volatile char buf[40];
    buf[0] = 1;
    chained_fn((void *)buf);
    sink += buf[0];
}

__attribute__((noinline)) static void call_chained_hot(void)
{
    volatile char buf[56];
    buf[0] = 1;
    chained_hot();
    sink += buf[0];
}

static DWORD WINAPI run(LPVOID arg)
{
    ((void (*)(void))arg)();
    return 0;
}

int main(void)
{
    static cf_program prog = {"chained"};
    cf_thread *t;

    t = cf_add_thread(&prog, "chained_part2", run, (LPVOID)call_chained_fn, 0);
    cf_in_ntdll(t);
    cf_expect_add(t, (DWORD64)(ULONG_PTR)chained_sleep_ret, "chained-return");
    t = cf_add_thread(&prog, "chained_cold", run, (LPVOID)call_chained_hot, 0);
    cf_in_ntdll(t);
    cf_expect_add(t, (DWORD64)(ULONG_PTR)chained_cold_ret, "chained-return");
    return cf_ready_and_wait(&prog);
}
