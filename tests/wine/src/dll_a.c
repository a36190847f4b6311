/*
 * The outer DLL of the two-DLL chain (frameless, -O1): calls dll_b!b_wait
 * through its import table (call [rip+__imp_b_wait]).
 */
#include <windows.h>

__declspec(dllimport) void b_wait(int n);

static volatile LONG sink;

__attribute__((noinline)) static void a_inner(int n)
{
    volatile char buf[120];
    buf[n & 7] = 1;
    b_wait(n + 1);
    sink += buf[1];
}

__declspec(dllexport) __attribute__((noinline)) void a_enter(int n)
{
    volatile char buf[24];
    buf[0] = 1;
    a_inner(n + 1);
    sink += buf[0];
}
