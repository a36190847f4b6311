/* zipfld.dll: the Compressed (zipped) Folders shell extension. Only the COM entry points are exported,
 * as on Windows; its verb handler therefore reads as DllGetClassObject+offset from exports alone. */
#include "fake.h"

DEFINE_SINK
DEFINE_DLLMAIN

typedef struct _SHELLEXECUTEINFO {
    DWORD size;
    LPCWSTR verb;
    LPCWSTR file;
    LPWSTR parameters;
} SHELLEXECUTEINFO;

IMPORT BOOL ShellExecuteExW(SHELLEXECUTEINFO *);

EXPORT LONG DllCanUnloadNow(void)
{
    return 1;
}

EXPORT LONG DllGetClassObject(PVOID clsid, PVOID iid, PVOID *object)
{
    static SHELLEXECUTEINFO empty;
    SINK(clsid);
    SINK(iid);
    *object = &empty;
    return ShellExecuteExW(&empty) ? 0 : 1;
}

/* Extracts the item to a temporary folder and opens it there. */
INTERNAL LONG CZipFolderContextMenu_InvokeCommand(PVOID self, SHELLEXECUTEINFO *command)
{
    BOOL ok = ShellExecuteExW(command);
    SINK(self);
    return ok ? 0 : 1;
}

