/*
 * Drives frameless.S: each thread calls, through a frame-pointer C function
 * (this file is built with -fno-omit-frame-pointer), one assembly function
 * that waits in Sleep with RBP clobbered. One more thread waits in a C
 * function built without a frame pointer whose 0x3000-byte array makes gcc
 * emit __chkstk + UWOP_ALLOC_LARGE itself.
 */
#include "common.h"

void fl_alloc16(void);
void fl_save_near(void);
void fl_alloc32(void);
void fl_fpreg_dyn(unsigned size);

static volatile LONG sink;

__attribute__((noinline)) static void via_fp_alloc16(void)
{
    volatile char buf[40];
    buf[0] = 1;
    fl_alloc16();
    sink += buf[0];
}

__attribute__((noinline)) static void via_fp_save_near(void)
{
    volatile char buf[40];
    buf[0] = 1;
    fl_save_near();
    sink += buf[0];
}

__attribute__((noinline)) static void via_fp_alloc32(void)
{
    volatile char buf[40];
    buf[0] = 1;
    fl_alloc32();
    sink += buf[0];
}

__attribute__((noinline)) static void via_fp_fpreg_dyn(void)
{
    volatile char buf[40];
    buf[0] = 1;
    fl_fpreg_dyn(0x100);
    sink += buf[0];
}

__attribute__((noinline, optimize("omit-frame-pointer"))) static void c_big_frame(int n)
{
    volatile char buf[0x3000];
    buf[n] = 1;
    for (;;) Sleep(INFINITE);
}

__attribute__((noinline)) static void via_fp_c_big(void)
{
    volatile char buf[40];
    buf[0] = 1;
    c_big_frame(7);
    sink += buf[0];
}

static DWORD WINAPI run(LPVOID arg)
{
    ((void (*)(void))arg)();
    return 0;
}

int main(void)
{
    static cf_program prog = {"frameless"};
    cf_thread *t;

    t = cf_add_thread(&prog, "fl_alloc16", run, (LPVOID)via_fp_alloc16, 0);
    cf_in_ntdll(t);
    t = cf_add_thread(&prog, "fl_save_near", run, (LPVOID)via_fp_save_near, 0);
    cf_in_ntdll(t);
    /* 0x110008 bytes of frame: reserve 4 MiB so the thread has room. */
    t = cf_add_thread(&prog, "fl_alloc32", run, (LPVOID)via_fp_alloc32, 4 << 20);
    cf_in_ntdll(t);
    t = cf_add_thread(&prog, "fl_fpreg_dyn", run, (LPVOID)via_fp_fpreg_dyn, 0);
    cf_in_ntdll(t);
    t = cf_add_thread(&prog, "c_big_frame", run, (LPVOID)via_fp_c_big, 0);
    cf_in_ntdll(t);
    return cf_ready_and_wait(&prog);
}
