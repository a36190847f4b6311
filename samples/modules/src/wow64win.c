/* wow64win.dll: the 64-bit side of 32-bit win32k calls. */
#include "fake.h"

DEFINE_SINK
DEFINE_DLLMAIN

IMPORT BOOL NtUserGetMessage(PVOID, HWND, UINT, UINT);

EXPORT NTSTATUS whNtUserGetMessage(ULONG *args)
{
    BYTE msg[48];
    BOOL result = NtUserGetMessage(msg, (HWND)(ULONG_PTR)args[1], args[2], args[3]);
    SINK(msg[0]);
    return result;
}
