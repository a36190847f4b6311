/* regsvc.dll: the Remote Registry service; each remote call is served through rpcrt4. */
#include "fake.h"

DEFINE_SINK
DEFINE_DLLMAIN

IMPORT LONG RegSetValueExW(HKEY, LPCWSTR, DWORD, DWORD, const BYTE *, DWORD);
IMPORT LONG RegCreateKeyExW(HKEY, LPCWSTR, DWORD, LPWSTR, DWORD, DWORD, PVOID, HKEY *, DWORD *);
IMPORT LONG RpcServerListen(UINT, UINT, UINT);

EXPORT void ServiceMain(DWORD argc, LPWSTR *argv)
{
    SINK(RpcServerListen(1, 1234, 1));
    SINK(argc);
    SINK(argv);
}

EXPORT void SvchostPushServiceGlobals(PVOID globals)
{
    SINK(RpcServerListen(1, 0, 1));
    SINK(globals);
}

/* BaseRegSetValue: the server side of a remote RegSetValueEx. */
EXPORT LONG BaseRegSetValue(HKEY key, LPCWSTR name, DWORD type, const BYTE *data, DWORD size)
{
    LONG result = RegSetValueExW(key, name, 0, type, data, size);
    SINK(result);
    return result;
}

EXPORT LONG BaseRegCreateKey(HKEY key, LPCWSTR subkey, HKEY *result)
{
    DWORD disposition = 0;
    LONG status = RegCreateKeyExW(key, subkey, 0, 0, 0, 0xF003F, 0, result, &disposition);
    SINK(disposition);
    return status;
}
