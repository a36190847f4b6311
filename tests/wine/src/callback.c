/*
 * Threads inside user-mode callbacks: a window procedure entered through
 * SendMessage from another thread runs on the receiving thread inside its
 * GetMessage call, through ntdll!KiUserCallbackDispatcher (Wine, like Windows,
 * calls user mode back from the window manager's system call).
 *
 *   wndproc_wait    a window thread in GetMessage; its window procedure, sent
 *                   WM_USER, waits forever in WaitForSingleObject: the stack is
 *                   the callback (window procedure, user32's dispatch,
 *                   KiUserCallbackDispatcher) above the outer GetMessage call.
 *   send_wndproc    the thread that sent it, waiting in SendMessage for the reply.
 *   modal_dialog    a window thread whose window procedure, sent WM_USER, opens
 *                   a modal dialog (DialogBoxIndirectParam, template in memory):
 *                   the dialog's own message loop waits inside the callback.
 *   send_modal      the thread that sent that one, waiting in SendMessage.
 *
 * The reference for the window threads: winedbg's backtrace down to
 * KiUserCallbackDispatcher (where it stops: Wine leaves no return address
 * there), then the thread's outer stack as Wine's unwinder saw it while the
 * thread idled in GetMessage, before the message was sent.
 *
 * A window needs a display driver: the prefix uses Wine's null driver
 * (tests/wine/wineprefix.py), so no X server is involved.
 */
#include "common.h"

typedef struct {
    const char *class_name;
    WNDPROC proc;
    HWND hwnd;
    volatile LONG created;
    volatile LONG in_state;   /* set by the window or dialog procedure once in its state */
    cf_callers outer;         /* the thread's stack while idle in GetMessage, before the callback */
} ui_thread;

static ui_thread wndproc_ui, modal_ui;

/* A dialog with no controls: the template DialogBoxIndirectParam needs (DWORD-aligned, WORD arrays). */
static struct {
    DLGTEMPLATE header;
    WORD menu, window_class, title;
} __attribute__((aligned(4))) dialog_template = {
    {WS_POPUP | WS_CAPTION | DS_MODALFRAME, 0, 0, 0, 0, 80, 40}, 0, 0, 0,
};

static INT_PTR CALLBACK dialog_proc(HWND dlg, UINT msg, WPARAM wparam, LPARAM lparam)
{
    if (msg == WM_INITDIALOG) {
        InterlockedExchange(&modal_ui.in_state, 1);
        return TRUE;
    }
    return FALSE;
}

static LRESULT CALLBACK wait_proc(HWND hwnd, UINT msg, WPARAM wparam, LPARAM lparam)
{
    if (msg == WM_USER) {
        InterlockedExchange(&wndproc_ui.in_state, 1);
        cf_block_forever();
    }
    return DefWindowProcA(hwnd, msg, wparam, lparam);
}

static LRESULT CALLBACK modal_proc(HWND hwnd, UINT msg, WPARAM wparam, LPARAM lparam)
{
    if (msg == WM_USER)
        return DialogBoxIndirectParamA(GetModuleHandleA(NULL), &dialog_template.header, hwnd, dialog_proc, 0);
    return DefWindowProcA(hwnd, msg, wparam, lparam);
}

/* Creates the thread's window and runs its message loop. */
static DWORD WINAPI ui_main(LPVOID arg)
{
    ui_thread *ui = arg;
    WNDCLASSA wc = {0};
    MSG msg;

    wc.lpfnWndProc = ui->proc;
    wc.hInstance = GetModuleHandleA(NULL);
    wc.lpszClassName = ui->class_name;
    if (!RegisterClassA(&wc)) {
        fprintf(stderr, "RegisterClass(%s) failed: %lu\n", ui->class_name, GetLastError());
        ExitProcess(3);
    }
    ui->hwnd = CreateWindowA(ui->class_name, ui->class_name, WS_OVERLAPPEDWINDOW, 0, 0, 100, 100,
                             NULL, NULL, wc.hInstance, NULL);
    if (!ui->hwnd) {
        fprintf(stderr, "CreateWindow(%s) failed: %lu (no display driver?)\n", ui->class_name, GetLastError());
        ExitProcess(3);
    }
    InterlockedExchange(&ui->created, 1);
    while (GetMessageA(&msg, NULL, 0, 0) > 0) {
        TranslateMessage(&msg);
        DispatchMessageA(&msg);
    }
    return 0;
}

static DWORD WINAPI sender_main(LPVOID arg)
{
    ui_thread *ui = arg;
    SendMessageA(ui->hwnd, WM_USER, 0, 0);
    cf_block_forever();
    return 0;
}

/*
 * Waits until the window thread idles in GetMessage (after the syscall in
 * win32u, its window created) and records its stack there: the outer part of
 * the stack the callback will run below.
 */
static void record_outer(cf_thread *t, ui_thread *ui)
{
    cf_after_syscall_in(t, "win32u.dll");
    t->state = &ui->created;
    if (!cf_wait_in_place(t, 10000) || !cf_unwind_thread(t->handle, &ui->outer)) {
        fprintf(stderr, "window thread %s never idled in GetMessage\n", ui->class_name);
        ExitProcess(3);
    }
    cf_expect_outer(t, &ui->outer);
}

/* A window thread, and a second thread that sends its window WM_USER. */
static void add_pair(cf_program *prog, ui_thread *ui, const char *ui_role, const char *sender_role,
                     const char *note)
{
    cf_thread *t = cf_add_thread(prog, ui_role, ui_main, ui, 0);
    record_outer(t, ui);
    cf_after_syscall_in(t, "ntdll.dll");
    t->state = &ui->in_state;
    t->note = note;
    t = cf_add_thread(prog, sender_role, sender_main, ui, 0);
    cf_after_syscall_in(t, "win32u.dll");
    t->state = &ui->in_state;
    t->note = "waiting in SendMessage for another thread's window procedure";
}

int main(void)
{
    static cf_program prog = {"callback"};

    wndproc_ui.class_name = "cf_wndproc_wait";
    wndproc_ui.proc = wait_proc;
    modal_ui.class_name = "cf_modal_dialog";
    modal_ui.proc = modal_proc;
    add_pair(&prog, &wndproc_ui, "wndproc_wait", "send_wndproc",
             "window procedure entered through SendMessage, waiting in WaitForSingleObject");
    add_pair(&prog, &modal_ui, "modal_dialog", "send_modal",
             "modal dialog opened by a window procedure entered through SendMessage");
    /* The modal loop waits in the window manager, not in ntdll. */
    cf_after_syscall_in(&prog.threads[2], "win32u.dll");
    return cf_ready_and_wait(&prog);
}
