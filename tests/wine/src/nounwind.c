/*
 * Drives nounwind.S: two threads spin (frame 0 in a leaf without unwind data,
 * and frame 0 inside a prolog), one waits in Sleep called from a function
 * without unwind data. Built with -O1 (frameless C with unwind data).
 */
#include "common.h"

void leaf_spin(void);
void prolog_spin(void);
void nounwind_sleeper(void);
extern char leaf_spin_end[], prolog_spin_loop[], prolog_spin_loop_end[], nounwind_sleeper_ret[];

static volatile LONG sink;

__attribute__((noinline)) static void call_leaf_spin(void)
{
    volatile char buf[40];
    buf[0] = 1;
    leaf_spin();
    sink += buf[0];
}

__attribute__((noinline)) static void call_prolog_spin(void)
{
    volatile char buf[72];
    buf[0] = 1;
    prolog_spin();
    sink += buf[0];
}

__attribute__((noinline)) static void call_nounwind_sleeper(void)
{
    volatile char buf[24];
    buf[0] = 1;
    nounwind_sleeper();
    sink += buf[0];
}

static DWORD WINAPI run(LPVOID arg)
{
    ((void (*)(void))arg)();
    return 0;
}

int main(void)
{
    static cf_program prog = {"nounwind"};
    cf_thread *t;

    t = cf_add_thread(&prog, "leaf_spin", run, (LPVOID)call_leaf_spin, 0);
    t->rip_lo = (DWORD64)(ULONG_PTR)leaf_spin;
    t->rip_hi = (DWORD64)(ULONG_PTR)leaf_spin_end;
    t->note = "frame 0 in a leaf without unwind data";
    t = cf_add_thread(&prog, "prolog_spin", run, (LPVOID)call_prolog_spin, 0);
    t->rip_lo = (DWORD64)(ULONG_PTR)prolog_spin_loop;
    t->rip_hi = (DWORD64)(ULONG_PTR)prolog_spin_loop_end;
    t->note = "frame 0 inside a prolog, after push rbx, before sub rsp";
    t = cf_add_thread(&prog, "nounwind_sleeper", run, (LPVOID)call_nounwind_sleeper, 0);
    cf_in_ntdll(t);
    t->note = "Sleep called from code without unwind data";
    cf_expect_add(t, (DWORD64)(ULONG_PTR)nounwind_sleeper_ret, "nounwind-return");
    return cf_ready_and_wait(&prog);
}
