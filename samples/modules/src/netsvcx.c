/* netsvcx.dll: a malicious service DLL (unsigned) that drops an executable from its ServiceMain. */
#include "fake.h"

DEFINE_SINK
DEFINE_DLLMAIN

IMPORT HANDLE CreateFileW(LPCWSTR, DWORD, DWORD, PVOID, DWORD, DWORD, HANDLE);
IMPORT BOOL WriteFile(HANDLE, const void *, DWORD, DWORD *, PVOID);
IMPORT void Sleep(DWORD);

static const WCHAR payload_path[] = {'C', ':', '\\', 'P', 'r', 'o', 'g', 'r', 'a', 'm', 'D', 'a', 't', 'a', '\\',
                                     'u', 'p', 'd', '.', 'e', 'x', 'e', 0};
static const BYTE payload[] = {'M', 'Z', 0x90, 0, 3, 0, 0, 0, 4, 0, 0, 0, 0xFF, 0xFF, 0, 0};

EXPORT void ServiceMain(DWORD argc, LPWSTR *argv)
{
    DWORD written = 0;
    HANDLE file = CreateFileW(payload_path, 0x40000000, 0, 0, 2, 0x80, 0);
    BOOL ok = WriteFile(file, payload, sizeof(payload), &written, 0);
    SINK(ok);
    Sleep(INFINITE);
    SINK(argc);
    SINK(argv);
}
