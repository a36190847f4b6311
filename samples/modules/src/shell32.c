/* shell32.dll: the desktop message loop, context-menu verbs and ShellExecuteEx. */
#include "fake.h"

DEFINE_SINK
DEFINE_DLLMAIN

IMPORT BOOL CreateProcessW(LPCWSTR, LPWSTR, PVOID, PVOID, BOOL, DWORD, PVOID, LPCWSTR, PVOID, PVOID);
IMPORT BOOL GetMessageW(PVOID, HWND, UINT, UINT);
IMPORT ULONG_PTR DispatchMessageW(const PVOID);

typedef struct _SHELLEXECUTEINFO {
    DWORD size;
    LPCWSTR verb;
    LPCWSTR file;
    LPWSTR parameters;
} SHELLEXECUTEINFO;

typedef LONG (*PINVOKE_COMMAND)(PVOID, PVOID);
typedef struct _CONTEXT_MENU {
    PINVOKE_COMMAND invoke;
    PVOID self;
} CONTEXT_MENU;

EXPORT BOOL ShellExecuteNormal(SHELLEXECUTEINFO *info)
{
    BYTE startup[104] = {0};
    BYTE process[24] = {0};
    BOOL ok = CreateProcessW(info->file, info->parameters, 0, 0, 0, 0x400, 0, 0, startup, process);
    SINK(ok);
    return ok;
}

EXPORT BOOL ShellExecuteExW(SHELLEXECUTEINFO *info)
{
    BOOL ok = ShellExecuteNormal(info);
    SINK(info->verb);
    return ok;
}

/* Runs a verb chosen in a folder view: the folder's own context-menu handler does the work. */
EXPORT LONG CDefFolderMenu_InvokeCommand(CONTEXT_MENU *menu, PVOID command)
{
    LONG result = menu->invoke(menu->self, command);
    SINK(result);
    return result;
}

EXPORT void SHDesktopMessageLoop(PVOID desktop)
{
    BYTE msg[48];
    while (GetMessageW(msg, 0, 0, 0) > 0)
        SINK(DispatchMessageW(msg));
    SINK(desktop);
}
