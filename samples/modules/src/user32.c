/* user32.dll: message loops (into win32u's system call stubs) and window procedure dispatch. */
#include "fake.h"

DEFINE_SINK
DEFINE_DLLMAIN

IMPORT BOOL NtUserGetMessage(PVOID, HWND, UINT, UINT);
IMPORT BOOL NtUserPeekMessage(PVOID, HWND, UINT, UINT, UINT);
IMPORT DWORD NtUserMsgWaitForMultipleObjectsEx(DWORD, HANDLE *, DWORD, DWORD, DWORD);
IMPORT BOOL NtUserWaitMessage(void);

typedef struct _MSG {
    HWND hwnd;
    UINT message;
    ULONG_PTR wParam;
    ULONG_PTR lParam;
    DWORD time;
    long pt[2];
} MSG;

typedef ULONG_PTR (*WNDPROC)(HWND, UINT, ULONG_PTR, ULONG_PTR);

EXPORT BOOL GetMessageW(MSG *msg, HWND hwnd, UINT first, UINT last)
{
    BOOL result = NtUserGetMessage(msg, hwnd, first, last);
    SINK(msg->message);
    return result;
}

EXPORT BOOL PeekMessageW(MSG *msg, HWND hwnd, UINT first, UINT last, UINT remove)
{
    BOOL result = NtUserPeekMessage(msg, hwnd, first, last, remove);
    SINK(msg->message);
    return result;
}

EXPORT DWORD MsgWaitForMultipleObjectsEx(DWORD count, HANDLE *handles, DWORD milliseconds, DWORD wake, DWORD flags)
{
    DWORD result = NtUserMsgWaitForMultipleObjectsEx(count, handles, milliseconds, wake, flags);
    SINK(result);
    return result;
}

EXPORT DWORD MsgWaitForMultipleObjects(DWORD count, HANDLE *handles, BOOL all, DWORD milliseconds, DWORD wake)
{
    DWORD result = MsgWaitForMultipleObjectsEx(count, handles, milliseconds, wake, all ? 1 : 0);
    SINK(result);
    return result;
}

EXPORT BOOL WaitMessage(void)
{
    BOOL result = NtUserWaitMessage();
    SINK(result);
    return result;
}

EXPORT ULONG_PTR UserCallWinProcCheckWow(WNDPROC proc, HWND hwnd, UINT message, ULONG_PTR wparam, ULONG_PTR lparam)
{
    ULONG_PTR result = proc(hwnd, message, wparam, lparam);
    SINK(result);
    return result;
}

EXPORT ULONG_PTR DispatchMessageW(const MSG *msg)
{
    ULONG_PTR result = UserCallWinProcCheckWow((WNDPROC)msg->lParam, msg->hwnd, msg->message, msg->wParam,
                                               msg->lParam);
    SINK(result);
    return result;
}
