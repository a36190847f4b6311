/*
 * The inner DLL of the two-DLL chain: exe -> dll_a!a_enter -> dll_b!b_wait -> Sleep.
 * Built with -O1 -fno-omit-frame-pointer (dll_a is frameless) so the chain mixes
 * both kinds of frame across module boundaries.
 */
#include <windows.h>

static volatile LONG sink;

__attribute__((noinline)) static void b_inner(int n)
{
    volatile char buf[72];
    buf[n & 7] = (char)n;
    for (;;) Sleep(INFINITE);
}

__declspec(dllexport) __attribute__((noinline)) void b_wait(int n)
{
    volatile char buf[40];
    buf[0] = 1;
    b_inner(n + 1);
    sink += buf[0];
}
