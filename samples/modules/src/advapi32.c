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
