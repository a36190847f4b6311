/* kernel32.dll: the thread-start thunk and the classic Win32 entry points that still have a frame of
 * their own on Windows 10 (the rest are forwarders to kernelbase, which applications call directly). */
#include "fake.h"

DEFINE_SINK
DEFINE_DLLMAIN

IMPORT BOOL CreateProcessInternalW(HANDLE, LPCWSTR, LPWSTR, PVOID, PVOID, BOOL, DWORD, PVOID, LPCWSTR, PVOID, PVOID,
                                   HANDLE *);
IMPORT HMODULE LoadLibraryExW(LPCWSTR, HANDLE, DWORD);
IMPORT HANDLE CreateRemoteThreadEx(HANDLE, PVOID, SIZE_T, PTHREAD_START, PVOID, DWORD, PVOID, DWORD *);
IMPORT NTSTATUS RtlExitUserThread(NTSTATUS);

/* ntdll's RtlUserThreadStart calls this (through Kernel32ThreadInitThunkFunction) for every thread. */
EXPORT void BaseThreadInitThunk(ULONG flags, PTHREAD_START start, PVOID param)
{
    start(param);
    SINK(flags);
    SINK(RtlExitUserThread(0));
}

EXPORT BOOL CreateProcessW(LPCWSTR application, LPWSTR command_line, PVOID process_sa, PVOID thread_sa, BOOL inherit,
                           DWORD flags, PVOID environment, LPCWSTR directory, PVOID startup_info, PVOID process_info)
{
    BOOL ok = CreateProcessInternalW(0, application, command_line, process_sa, thread_sa, inherit, flags,
                                     environment, directory, startup_info, process_info, 0);
    SINK(ok);
    return ok;
}

EXPORT BOOL CreateProcessA(LPCSTR application, char *command_line, PVOID process_sa, PVOID thread_sa, BOOL inherit,
                           DWORD flags, PVOID environment, LPCSTR directory, PVOID startup_info, PVOID process_info)
{
    BOOL ok = CreateProcessInternalW(0, (LPCWSTR)application, (LPWSTR)command_line, process_sa, thread_sa, inherit,
                                     flags, environment, (LPCWSTR)directory, startup_info, process_info, 0);
    SINK(ok);
    return ok;
}

EXPORT UINT WinExec(LPCSTR command_line, UINT show)
{
    BYTE startup[104] = {0};
    BYTE info[24] = {0};
    BOOL ok = CreateProcessA(0, (char *)command_line, 0, 0, 0, 0, 0, 0, startup, info);
    SINK(show);
    return ok ? 33 : 0;
}

EXPORT HMODULE LoadLibraryW(LPCWSTR name)
{
    HMODULE module = LoadLibraryExW(name, 0, 0);
    SINK(module);
    return module;
}

EXPORT HMODULE LoadLibraryA(LPCSTR name)
{
    HMODULE module = LoadLibraryExW((LPCWSTR)name, 0, 0);
    SINK(module);
    return module;
}

EXPORT HANDLE CreateThread(PVOID sa, SIZE_T stack, PTHREAD_START start, PVOID param, DWORD flags, DWORD *tid)
{
    HANDLE thread = CreateRemoteThreadEx(CURRENT_PROCESS, sa, stack, start, param, flags, 0, tid);
    SINK(thread);
    return thread;
}
