/* logsvc.dll: a benign service DLL whose ServiceMain writes its log file. */
#include "fake.h"

DEFINE_SINK
DEFINE_DLLMAIN

IMPORT HANDLE CreateFileW(LPCWSTR, DWORD, DWORD, PVOID, DWORD, DWORD, HANDLE);
IMPORT BOOL WriteFile(HANDLE, const void *, DWORD, DWORD *, PVOID);
IMPORT DWORD WaitForSingleObjectEx(HANDLE, DWORD, BOOL);

static const WCHAR log_path[] = {'C', ':', '\\', 'W', 'i', 'n', 'd', 'o', 'w', 's', '\\', 'L', 'o', 'g', 's', '\\',
                                 's', 'v', 'c', '.', 'l', 'o', 'g', 0};
static const char line[] = "service started\r\n";

EXPORT void ServiceMain(DWORD argc, LPWSTR *argv)
{
    DWORD written = 0;
    HANDLE file = CreateFileW(log_path, 0x40000000, 1, 0, 4, 0x80, 0);
    BOOL ok = WriteFile(file, line, sizeof(line) - 1, &written, 0);
    SINK(ok);
    SINK(WaitForSingleObjectEx((HANDLE)(ULONG_PTR)0x120, INFINITE, 0));
    SINK(argc);
    SINK(argv);
}
