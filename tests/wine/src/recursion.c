/*
 * Deep recursion, where every frame returns to the same call site:
 *
 *   self_recursion     recurse(100): one function calling itself 100 times, then Sleep
 *   mutual_recursion   ping(40) <-> pong: two functions calling each other, 80 frames, then Sleep
 *
 * Each level keeps a local array and does work after the call, so the calls
 * are neither inlined nor turned into loops or tail calls (-O1, frameless:
 * every level is unwound from .pdata).
 */
#include "common.h"

#define SELF_DEPTH 100
#define MUTUAL_DEPTH 40

static volatile LONG sink, self_bottom, mutual_bottom;

__attribute__((noinline)) static void recurse(int n)
{
    volatile char buf[32];
    buf[n & 7] = (char)n;
    if (n > 0)
        recurse(n - 1);
    else
        for (InterlockedExchange(&self_bottom, 1);;) Sleep(INFINITE);
    sink += buf[1];
}

__attribute__((noinline)) static void pong(int n);

__attribute__((noinline)) static void ping(int n)
{
    volatile char buf[24];
    buf[n & 3] = (char)n;
    if (n > 0)
        pong(n);
    else
        for (InterlockedExchange(&mutual_bottom, 1);;) Sleep(INFINITE);
    sink += buf[2];
}

__attribute__((noinline)) static void pong(int n)
{
    volatile char buf[40];
    buf[n & 3] = (char)n;
    ping(n - 1);
    sink += buf[3];
}

static DWORD WINAPI self_main(LPVOID arg)
{
    recurse(SELF_DEPTH);
    return 0;
}

static DWORD WINAPI mutual_main(LPVOID arg)
{
    ping(MUTUAL_DEPTH);
    return 0;
}

int main(void)
{
    static cf_program prog = {"recursion"};
    cf_thread *t;

    t = cf_add_thread(&prog, "self_recursion", self_main, NULL, 0);
    cf_in_ntdll(t);
    t->state = &self_bottom;
    t = cf_add_thread(&prog, "mutual_recursion", mutual_main, NULL, 0);
    cf_in_ntdll(t);
    t->state = &mutual_bottom;
    return cf_ready_and_wait(&prog);
}
