/*
 * A call chain across two DLLs: exe -> dll_a!a_enter -> dll_a -> dll_b!b_wait
 * -> dll_b -> kernel32/kernelbase!Sleep -> ntdll. The exe loads dll_a through
 * its import table; dll_a imports dll_b.
 */
#include "common.h"

__declspec(dllimport) void a_enter(int n);

static DWORD WINAPI run(LPVOID arg)
{
    a_enter((int)(ULONG_PTR)arg);
    return 0;
}

int main(void)
{
    static cf_program prog = {"twodll"};
    cf_thread *t;

    t = cf_add_thread(&prog, "dll_chain", run, (LPVOID)1, 0);
    cf_in_ntdll(t);
    return cf_ready_and_wait(&prog);
}
