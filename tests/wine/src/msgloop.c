/*
 * Threads idle in the window manager's waits, as every GUI thread is most of
 * its life:
 *
 *   getmessage       a window thread in its GetMessage loop, no message pending
 *   messagebox       a thread inside MessageBox (user32's modal dialog loop)
 *   dialogbox        a thread inside DialogBoxIndirectParam (its own dialog, template in memory)
 *   msgwait          MsgWaitForMultipleObjectsEx(MWMO_ALERTABLE): messages, handles and APCs at once
 *
 * Each waits after a `syscall` in win32u. The modal loops are entered for
 * real: a CBT hook (messagebox) and the dialog procedure (dialogbox) say when
 * the dialog exists, and only then is the thread in place.
 */
#include "common.h"

static volatile LONG window_created, messagebox_up, dialog_up, msgwait_entered;

static struct {
    DLGTEMPLATE header;
    WORD menu, window_class, title;
} __attribute__((aligned(4))) dialog_template = {
    {WS_POPUP | WS_CAPTION | DS_MODALFRAME, 0, 0, 0, 0, 80, 40}, 0, 0, 0,
};

static DWORD WINAPI getmessage_main(LPVOID arg)
{
    WNDCLASSA wc = {0};
    MSG msg;
    wc.lpfnWndProc = DefWindowProcA;
    wc.hInstance = GetModuleHandleA(NULL);
    wc.lpszClassName = "cf_getmessage";
    if (!RegisterClassA(&wc) || !CreateWindowA(wc.lpszClassName, "cf", WS_OVERLAPPEDWINDOW, 0, 0, 100, 100,
                                               NULL, NULL, wc.hInstance, NULL)) {
        fprintf(stderr, "getmessage: no window (%lu)\n", GetLastError());
        ExitProcess(3);
    }
    InterlockedExchange(&window_created, 1);
    while (GetMessageA(&msg, NULL, 0, 0) > 0) DispatchMessageA(&msg);
    return 0;
}

static LRESULT CALLBACK cbt_hook(int code, WPARAM wparam, LPARAM lparam)
{
    if (code == HCBT_ACTIVATE) InterlockedExchange(&messagebox_up, 1);
    return CallNextHookEx(NULL, code, wparam, lparam);
}

static DWORD WINAPI messagebox_main(LPVOID arg)
{
    SetWindowsHookExA(WH_CBT, cbt_hook, NULL, GetCurrentThreadId());
    MessageBoxA(NULL, "parked in a modal loop", "callstack-forensics", MB_OK);
    cf_block_forever();
    return 0;
}

static INT_PTR CALLBACK dialog_proc(HWND dlg, UINT msg, WPARAM wparam, LPARAM lparam)
{
    if (msg == WM_INITDIALOG) {
        InterlockedExchange(&dialog_up, 1);
        return TRUE;
    }
    return FALSE;
}

static DWORD WINAPI dialogbox_main(LPVOID arg)
{
    DialogBoxIndirectParamA(GetModuleHandleA(NULL), &dialog_template.header, NULL, dialog_proc, 0);
    cf_block_forever();
    return 0;
}

static DWORD WINAPI msgwait_main(LPVOID arg)
{
    InterlockedExchange(&msgwait_entered, 1);
    for (;;) MsgWaitForMultipleObjectsEx(0, NULL, INFINITE, QS_ALLINPUT, MWMO_ALERTABLE);
    return 0;
}

static void add(cf_program *prog, const char *role, LPTHREAD_START_ROUTINE fn, volatile LONG *state,
                const char *note)
{
    cf_thread *t = cf_add_thread(prog, role, fn, NULL, 0);
    cf_after_syscall_in(t, "win32u.dll");
    t->state = state;
    t->note = note;
}

int main(void)
{
    static cf_program prog = {"msgloop"};

    add(&prog, "getmessage", getmessage_main, &window_created, "window thread idle in GetMessage");
    add(&prog, "messagebox", messagebox_main, &messagebox_up, "inside MessageBox's modal loop");
    add(&prog, "dialogbox", dialogbox_main, &dialog_up, "inside DialogBoxIndirectParam's modal loop");
    add(&prog, "msgwait", msgwait_main, &msgwait_entered, "MsgWaitForMultipleObjectsEx, alertable");
    return cf_ready_and_wait(&prog);
}
