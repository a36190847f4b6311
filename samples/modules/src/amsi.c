/* amsi.dll: the Antimalware Scan Interface that script hosts (PowerShell, WSH, Office VBA) hand their
 * content to before running it. Each entry point reaches the registered provider through a pointer,
 * as the real one reaches its IAntimalwareProvider; a bypass that patches AmsiScanBuffer to return
 * E_INVALIDARG at once, or sets a hardware breakpoint on it, skips exactly this call. */
#include "fake.h"

DEFINE_SINK
DEFINE_DLLMAIN

typedef long HRESULT;
typedef HRESULT (*PPROVIDER_SCAN)(PVOID context, PVOID buffer, ULONG length, LPCWSTR name, int *result);

/* The registered provider (the antimalware engine's scan); set when AMSI initialises. */
volatile PPROVIDER_SCAN g_provider_scan;

INTERNAL HRESULT AmsiComScanBuffer(PVOID context, PVOID buffer, ULONG length, LPCWSTR name, int *result)
{
    HRESULT hr = g_provider_scan(context, buffer, length, name, result);
    SINK(hr);
    return hr;
}

EXPORT HRESULT AmsiInitialize(LPCWSTR app_name, PVOID *context)
{
    int result = 0;
    HRESULT hr = AmsiComScanBuffer(context, (PVOID)app_name, 0, app_name, &result);
    SINK(result);
    return hr;
}

EXPORT HRESULT AmsiOpenSession(PVOID context, PVOID *session)
{
    int result = 0;
    HRESULT hr = AmsiComScanBuffer(context, session, 0, 0, &result);
    SINK(result);
    return hr;
}

EXPORT HRESULT AmsiScanBuffer(PVOID context, PVOID buffer, ULONG length, LPCWSTR name, PVOID session, int *result)
{
    HRESULT hr = AmsiComScanBuffer(context, buffer, length, name, result);
    SINK(session);
    return hr;
}

EXPORT HRESULT AmsiScanString(PVOID context, LPCWSTR text, LPCWSTR name, PVOID session, int *result)
{
    ULONG length = 0;
    while (text[length])
        length++;
    HRESULT hr = AmsiScanBuffer(context, (PVOID)text, length * 2, name, session, result);
    SINK(hr);
    return hr;
}

EXPORT void AmsiCloseSession(PVOID context, PVOID session)
{
    int result = 0;
    SINK(AmsiComScanBuffer(context, session, 0, 0, &result));
}

EXPORT void AmsiUninitialize(PVOID context)
{
    int result = 0;
    SINK(AmsiComScanBuffer(context, 0, 0, 0, &result));
}
