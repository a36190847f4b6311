/*
 * Threads that wait at the end of frame-pointer call chains (built with
 * -fno-omit-frame-pointer: gcc emits push rbp / mov rbp,rsp and UWOP_SET_FPREG),
 * through the usual Windows waits:
 *   fp_sleep      chain of 4 -> kernel32!Sleep (a jmp thunk into kernelbase) -> ntdll
 *   fp_wait       chain of 3 -> kernel32!WaitForSingleObject -> kernelbase -> ntdll
 *   fp_sleepex_kb chain of 3 -> kernelbase!SleepEx, called directly through GetProcAddress
 * and the main thread in WaitForSingleObject. Each link keeps a local array and
 * does work after the call so nothing is inlined or tail-called.
 */
#include "common.h"

typedef DWORD (WINAPI *sleepex_fn)(DWORD, BOOL);

static volatile LONG sink;

__attribute__((noinline)) static void fp_sleep_d(int n)
{
    volatile char buf[48];
    buf[0] = (char)n;
    for (;;) Sleep(INFINITE);
}

__attribute__((noinline)) static void fp_sleep_c(int n)
{
    volatile char buf[64];
    buf[n & 7] = 1;
    fp_sleep_d(n + 1);
    sink += buf[1];
}

__attribute__((noinline)) static void fp_sleep_b(int n)
{
    volatile char buf[80];
    buf[n & 7] = 2;
    fp_sleep_c(n + 1);
    sink += buf[2];
}

__attribute__((noinline)) static void fp_sleep_a(int n)
{
    volatile char buf[96];
    buf[n & 7] = 3;
    fp_sleep_b(n + 1);
    sink += buf[3];
}

static DWORD WINAPI fp_sleep_thread(LPVOID arg)
{
    fp_sleep_a((int)(ULONG_PTR)arg);
    return 0;
}

__attribute__((noinline)) static void fp_wait_c(HANDLE h)
{
    volatile char buf[32];
    buf[0] = 1;
    for (;;) WaitForSingleObject(h, INFINITE);
}

__attribute__((noinline)) static void fp_wait_b(HANDLE h)
{
    volatile char buf[40];
    buf[1] = 1;
    fp_wait_c(h);
    sink += buf[1];
}

__attribute__((noinline)) static void fp_wait_a(HANDLE h)
{
    volatile char buf[56];
    buf[2] = 1;
    fp_wait_b(h);
    sink += buf[2];
}

static DWORD WINAPI fp_wait_thread(LPVOID arg)
{
    fp_wait_a((HANDLE)arg);
    return 0;
}

__attribute__((noinline)) static void fp_sleepex_c(sleepex_fn fn)
{
    volatile char buf[24];
    buf[0] = 1;
    for (;;) fn(INFINITE, TRUE);
}

__attribute__((noinline)) static void fp_sleepex_b(sleepex_fn fn)
{
    volatile char buf[24];
    buf[0] = 1;
    fp_sleepex_c(fn);
    sink += buf[0];
}

__attribute__((noinline)) static void fp_sleepex_a(sleepex_fn fn)
{
    volatile char buf[24];
    buf[0] = 1;
    fp_sleepex_b(fn);
    sink += buf[0];
}

static DWORD WINAPI fp_sleepex_thread(LPVOID arg)
{
    fp_sleepex_a((sleepex_fn)arg);
    return 0;
}

int main(void)
{
    static cf_program prog = {"fp_chain"};
    HANDLE never = CreateEventA(NULL, TRUE, FALSE, NULL);
    sleepex_fn sleepex = (sleepex_fn)GetProcAddress(GetModuleHandleA("kernelbase.dll"), "SleepEx");
    cf_thread *t;

    if (!sleepex) {
        fprintf(stderr, "kernelbase!SleepEx not found\n");
        return 3;
    }
    t = cf_add_thread(&prog, "fp_sleep", fp_sleep_thread, (LPVOID)1, 0);
    cf_in_ntdll(t);
    t = cf_add_thread(&prog, "fp_wait", fp_wait_thread, never, 0);
    cf_in_ntdll(t);
    t = cf_add_thread(&prog, "fp_sleepex_kb", fp_sleepex_thread, (LPVOID)sleepex, 0);
    cf_in_ntdll(t);
    return cf_ready_and_wait(&prog);
}
