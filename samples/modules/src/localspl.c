/* localspl.dll: the local print provider; adding a port monitor loads its DLL into the spooler. */
#include "fake.h"

DEFINE_SINK
DEFINE_DLLMAIN

IMPORT HMODULE LoadLibraryExW(LPCWSTR, HANDLE, DWORD);

typedef struct _MONITOR_INFO {
    LPWSTR name;
    LPWSTR environment;
    LPWSTR dll_name;
} MONITOR_INFO;

EXPORT PVOID CreateMonitorEntry(LPCWSTR dll_name, LPCWSTR monitor_name)
{
    HMODULE module = LoadLibraryExW(dll_name, 0, 0x800);
    SINK(monitor_name);
    return module;
}

EXPORT BOOL SplAddMonitor(LPWSTR server, DWORD level, MONITOR_INFO *info)
{
    PVOID entry = CreateMonitorEntry(info->dll_name, info->name);
    SINK(server);
    SINK(level);
    return entry != 0;
}

EXPORT PVOID SplLoadPrinterDriver(LPCWSTR driver_path)
{
    HMODULE module = LoadLibraryExW(driver_path, 0, 0x8);
    SINK(module);
    return module;
}
