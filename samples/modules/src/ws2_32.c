/* ws2_32.dll: Winsock; a connection ends in an AFD device I/O control. */
#include "fake.h"

DEFINE_SINK
DEFINE_DLLMAIN

IMPORT NTSTATUS NtDeviceIoControlFile(HANDLE, HANDLE, PVOID, PVOID, IO_STATUS_BLOCK *, ULONG, PVOID, ULONG, PVOID,
                                      ULONG);
IMPORT HMODULE LoadLibraryExW(LPCWSTR, HANDLE, DWORD);

static const WCHAR mswsock[] = {'m', 's', 'w', 's', 'o', 'c', 'k', '.', 'd', 'l', 'l', 0};

EXPORT int WSAStartup(WORD version, PVOID data)
{
    HMODULE provider = LoadLibraryExW(mswsock, 0, 0x800);
    SINK(version);
    SINK(data);
    return provider ? 0 : 10091;
}

EXPORT int WSPConnect(HANDLE socket, const PVOID address, int length)
{
    IO_STATUS_BLOCK iosb = {0, 0};
    NTSTATUS status = NtDeviceIoControlFile(socket, 0, 0, 0, &iosb, 0x12007, (PVOID)address, (ULONG)length, 0, 0);
    SINK(iosb.Status);
    return status >= 0 ? 0 : -1;
}

EXPORT int connect(HANDLE socket, const PVOID address, int length)
{
    int result = WSPConnect(socket, address, length);
    SINK(result);
    return result;
}
