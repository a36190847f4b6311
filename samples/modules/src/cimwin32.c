/* cimwin32.dll: the Win32_* WMI provider; Win32_Process.Create starts processes for WMI clients. */
#include "fake.h"

DEFINE_SINK
DEFINE_DLLMAIN

IMPORT BOOL CreateProcessW(LPCWSTR, LPWSTR, PVOID, PVOID, BOOL, DWORD, PVOID, LPCWSTR, PVOID, PVOID);

EXPORT LONG Win32_Process_Create(LPWSTR command_line, LPCWSTR directory, PVOID startup)
{
    BYTE info[104] = {0};
    BYTE process[24] = {0};
    BOOL ok = CreateProcessW(0, command_line, 0, 0, 0, 0x10, 0, directory, info, process);
    SINK(startup);
    return ok ? 0 : 9;
}

EXPORT LONG Win32_Process_ExecMethod(PVOID method, LPWSTR command_line)
{
    LONG result = Win32_Process_Create(command_line, 0, 0);
    SINK(method);
    return result;
}
