/* advapi32.dll: registry and service entry points forwarding to kernelbase and sechost. */
#include "fake.h"

DEFINE_SINK
DEFINE_DLLMAIN

IMPORT LONG LocalBaseRegSetValue(HKEY, LPCWSTR, DWORD, const BYTE *, DWORD);
IMPORT BOOL StartServiceCtrlDispatcherW(PVOID);

EXPORT LONG RegSetValueExW(HKEY key, LPCWSTR name, DWORD reserved, DWORD type, const BYTE *data, DWORD size)
{
    LONG result = LocalBaseRegSetValue(key, name, type, data, size);
    SINK(reserved);
    return result;
}

EXPORT BOOL StartServiceCtrlDispatcher(PVOID table)
{
    BOOL ok = StartServiceCtrlDispatcherW(table);
    SINK(ok);
    return ok;
}

/* SystemFunction032: RC4 over a buffer in place (an implant encrypting itself runs it through
   NtContinue while it sleeps). */
static __attribute__((noinline)) NTSTATUS rc4_crypt(PVOID data, PVOID key)
{
    SINK(data);
    SINK(key);
    return 0;
}

EXPORT NTSTATUS SystemFunction032(PVOID data, PVOID key)
{
    NTSTATUS status = rc4_crypt(data, key);
    SINK(status);
    return status;
}
