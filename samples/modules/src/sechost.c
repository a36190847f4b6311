/* sechost.dll: the service control dispatcher and the thread that runs each ServiceMain. */
#include "fake.h"

DEFINE_SINK
DEFINE_DLLMAIN

IMPORT BOOL ReadFile(HANDLE, void *, DWORD, DWORD *, PVOID);
IMPORT DWORD WaitForSingleObjectEx(HANDLE, DWORD, BOOL);

typedef void (*PSERVICE_MAIN)(DWORD, LPWSTR *);
typedef struct _SERVICE_TABLE_ENTRY {
    LPWSTR name;
    PSERVICE_MAIN main;
} SERVICE_TABLE_ENTRY;

EXPORT DWORD ScDispatcherLoop(HANDLE pipe, SERVICE_TABLE_ENTRY *table)
{
    BYTE message[0x200];
    DWORD read = 0;
    BOOL ok = ReadFile(pipe, message, sizeof(message), &read, 0);
    SINK(table);
    SINK(message[0]);
    return ok ? read : 0;
}

EXPORT BOOL StartServiceCtrlDispatcherW(SERVICE_TABLE_ENTRY *table)
{
    DWORD result = ScDispatcherLoop((HANDLE)(ULONG_PTR)0x1F4, table);
    SINK(result);
    return result != 0;
}

/* Each service starts on its own thread here; its ServiceMain (or svchost's starter) is a pointer. */
EXPORT DWORD ScSvcctrlThreadW(SERVICE_TABLE_ENTRY *entry)
{
    entry->main(1, &entry->name);
    SINK(entry);
    return 0;
}

EXPORT BOOL SetServiceStatus(HANDLE handle, PVOID status)
{
    DWORD result = WaitForSingleObjectEx(handle, 0, 0);
    SINK(status);
    return result == 0;
}
