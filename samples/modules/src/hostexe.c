/* Template for the executables: building blocks a scenario names as frames (a message loop, a wait,
 * a service starter, worker threads that call through pointers, launching a child). Built once per
 * executable name with -DEXE_NAME so every image differs. */
#include "fake.h"

DEFINE_SINK

IMPORT BOOL GetMessageW(PVOID, HWND, UINT, UINT);
IMPORT ULONG_PTR DispatchMessageW(const PVOID);
IMPORT DWORD WaitForSingleObjectEx(HANDLE, DWORD, BOOL);
IMPORT void Sleep(DWORD);
IMPORT BOOL CreateProcessW(LPCWSTR, LPWSTR, PVOID, PVOID, BOOL, DWORD, PVOID, LPCWSTR, PVOID, PVOID);

static const char image_name[] = EXE_NAME;

typedef ULONG_PTR (*PHANDLER)(PVOID);
typedef struct _WORK_ITEM {
    PHANDLER handler;
    PVOID argument;
} WORK_ITEM;

EXPORT int MessageLoop(HWND window)
{
    BYTE msg[48];
    int count = 0;
    while (GetMessageW(msg, window, 0, 0) > 0) {
        SINK(DispatchMessageW(msg));
        count++;
    }
    return count;
}

EXPORT int wWinMain(PVOID instance, PVOID previous, LPWSTR command_line, int show)
{
    int result = MessageLoop(0);
    SINK(instance);
    SINK(previous);
    SINK(command_line);
    SINK(show);
    return result;
}

EXPORT int wmain(int argc, WCHAR **argv)
{
    DWORD result = WaitForSingleObjectEx((HANDLE)(ULONG_PTR)0x80, INFINITE, 0);
    SINK(argc);
    SINK(argv);
    return (int)result;
}

EXPORT void ServiceStarter(WORK_ITEM *service)
{
    SINK(service->handler(service->argument));
}

EXPORT ULONG WorkerThread(WORK_ITEM *item)
{
    ULONG_PTR result = item->handler(item->argument);
    SINK(result);
    return (ULONG)result;
}

EXPORT ULONG_PTR DispatchCommand(WORK_ITEM *command)
{
    ULONG_PTR result = command->handler(command->argument);
    SINK(command);
    return result;
}

EXPORT ULONG IdleLoop(PVOID context)
{
    for (;;) {
        Sleep(60000);
        SINK(context);
    }
    return 0;
}

EXPORT BOOL LaunchChild(LPWSTR command_line)
{
    BYTE startup[104] = {0};
    BYTE process[24] = {0};
    BOOL ok = CreateProcessW(0, command_line, 0, 0, 0, 0, 0, 0, startup, process);
    SINK(ok);
    return ok;
}

EXPORT int wWinMainCRTStartup(void)
{
    int result = wWinMain(0, 0, 0, 1);
    SINK(image_name[0]);
    return result;
}

EXPORT int wmainCRTStartup(void)
{
    int result = wmain(1, 0);
    SINK(image_name[0]);
    return result;
}
