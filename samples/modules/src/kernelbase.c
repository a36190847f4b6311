/* kernelbase.dll: the Win32 layer over ntdll (process creation, waits, files, loader, registry). */
#include "fake.h"

DEFINE_SINK
DEFINE_DLLMAIN

IMPORT NTSTATUS NtCreateUserProcess(HANDLE *, HANDLE *, ULONG, ULONG, PVOID, PVOID, ULONG, ULONG, PVOID, PVOID, PVOID);
IMPORT NTSTATUS NtWaitForSingleObject(HANDLE, BOOL, PVOID);
IMPORT NTSTATUS NtWaitForMultipleObjects(ULONG, HANDLE *, ULONG, BOOL, PVOID);
IMPORT NTSTATUS NtDelayExecution(BOOL, PVOID);
IMPORT NTSTATUS NtCreateFile(HANDLE *, ULONG, OBJECT_ATTRIBUTES *, IO_STATUS_BLOCK *, PVOID, ULONG, ULONG, ULONG,
                             ULONG, PVOID, ULONG);
IMPORT NTSTATUS NtOpenFile(HANDLE *, ULONG, OBJECT_ATTRIBUTES *, IO_STATUS_BLOCK *, ULONG, ULONG);
IMPORT NTSTATUS NtWriteFile(HANDLE, HANDLE, PVOID, PVOID, IO_STATUS_BLOCK *, PVOID, ULONG, PVOID, PVOID);
IMPORT NTSTATUS NtReadFile(HANDLE, HANDLE, PVOID, PVOID, IO_STATUS_BLOCK *, PVOID, ULONG, PVOID, PVOID);
IMPORT NTSTATUS NtSetInformationFile(HANDLE, IO_STATUS_BLOCK *, PVOID, ULONG, ULONG);
IMPORT NTSTATUS NtClose(HANDLE);
IMPORT NTSTATUS LdrLoadDll(WCHAR *, ULONG *, UNICODE_STRING *, PVOID *);
IMPORT NTSTATUS NtSetValueKey(HANDLE, UNICODE_STRING *, ULONG, ULONG, PVOID, ULONG);
IMPORT NTSTATUS NtCreateKey(HANDLE *, ULONG, OBJECT_ATTRIBUTES *, ULONG, UNICODE_STRING *, ULONG, ULONG *);
IMPORT NTSTATUS NtRemoveIoCompletion(HANDLE, PVOID *, PVOID *, IO_STATUS_BLOCK *, PVOID);
IMPORT NTSTATUS NtMapViewOfSection(HANDLE, HANDLE, PVOID *, ULONG_PTR, SIZE_T, PVOID, SIZE_T *, ULONG, ULONG, ULONG);
IMPORT NTSTATUS NtCreateThreadEx(HANDLE *, ULONG, PVOID, HANDLE, PVOID, PVOID, ULONG, SIZE_T, SIZE_T, SIZE_T, PVOID);
IMPORT NTSTATUS NtAllocateVirtualMemory(HANDLE, PVOID *, ULONG_PTR, SIZE_T *, ULONG, ULONG);
IMPORT NTSTATUS NtProtectVirtualMemory(HANDLE, PVOID *, SIZE_T *, ULONG, ULONG *);
IMPORT NTSTATUS NtDeviceIoControlFile(HANDLE, HANDLE, PVOID, PVOID, IO_STATUS_BLOCK *, ULONG, PVOID, ULONG, PVOID,
                                      ULONG);
IMPORT NTSTATUS NtFsControlFile(HANDLE, HANDLE, PVOID, PVOID, IO_STATUS_BLOCK *, ULONG, PVOID, ULONG, PVOID, ULONG);
IMPORT NTSTATUS NtQueryInformationProcess(HANDLE, ULONG, PVOID, ULONG, ULONG *);
IMPORT NTSTATUS NtTerminateProcess(HANDLE, NTSTATUS);

static void init_string(UNICODE_STRING *s, LPCWSTR text)
{
    USHORT n = 0;
    while (text && text[n])
        n++;
    s->Length = (USHORT)(n * 2);
    s->MaximumLength = (USHORT)(n * 2 + 2);
    s->Buffer = (WCHAR *)text;
}

static PVOID timeout_of(DWORD ms, long long *storage)
{
    if (ms == INFINITE)
        return 0;
    *storage = -(long long)ms * 10000;
    return storage;
}

/* ---- processes ------------------------------------------------------------------------ */

EXPORT BOOL CreateProcessInternalW(HANDLE token, LPCWSTR application, LPWSTR command_line, PVOID process_sa,
                                   PVOID thread_sa, BOOL inherit, DWORD flags, PVOID environment, LPCWSTR directory,
                                   PVOID startup_info, PVOID process_info, HANDLE *new_token)
{
    HANDLE process = 0, thread = 0;
    UNICODE_STRING image;
    init_string(&image, application ? application : command_line);
    NTSTATUS status = NtCreateUserProcess(&process, &thread, 0x1FFFFF, 0x1FFFFF, process_sa, thread_sa,
                                          inherit ? 4 : 0, flags & 4, &image, startup_info, environment);
    SINK(token);
    SINK(directory);
    SINK(process_info);
    SINK(new_token);
    return status >= 0;
}

EXPORT BOOL CreateProcessW(LPCWSTR application, LPWSTR command_line, PVOID process_sa, PVOID thread_sa, BOOL inherit,
                           DWORD flags, PVOID environment, LPCWSTR directory, PVOID startup_info, PVOID process_info)
{
    BOOL ok = CreateProcessInternalW(0, application, command_line, process_sa, thread_sa, inherit, flags,
                                     environment, directory, startup_info, process_info, 0);
    SINK(ok);
    return ok;
}

EXPORT BOOL CreateProcessAsUserW(HANDLE token, LPCWSTR application, LPWSTR command_line, PVOID process_sa,
                                 PVOID thread_sa, BOOL inherit, DWORD flags, PVOID environment, LPCWSTR directory,
                                 PVOID startup_info, PVOID process_info)
{
    BOOL ok = CreateProcessInternalW(token, application, command_line, process_sa, thread_sa, inherit, flags,
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

EXPORT BOOL TerminateProcess(HANDLE process, UINT code)
{
    NTSTATUS status = NtTerminateProcess(process, (NTSTATUS)code);
    SINK(status);
    return status >= 0;
}

EXPORT BOOL ProcessIdToSessionId(DWORD pid, DWORD *session)
{
    ULONG length = 0;
    NTSTATUS status = NtQueryInformationProcess(CURRENT_PROCESS, 24, session, 4, &length);
    SINK(pid);
    return status >= 0;
}

/* ---- waits ----------------------------------------------------------------------------- */

EXPORT DWORD WaitForSingleObjectEx(HANDLE handle, DWORD milliseconds, BOOL alertable)
{
    long long timeout;
    NTSTATUS status = NtWaitForSingleObject(handle, alertable, timeout_of(milliseconds, &timeout));
    SINK(status);
    return (DWORD)status;
}

EXPORT DWORD WaitForSingleObject(HANDLE handle, DWORD milliseconds)
{
    DWORD result = WaitForSingleObjectEx(handle, milliseconds, 0);
    SINK(result);
    return result;
}

EXPORT DWORD WaitForMultipleObjectsEx(DWORD count, HANDLE *handles, BOOL wait_all, DWORD milliseconds,
                                      BOOL alertable)
{
    long long timeout;
    NTSTATUS status = NtWaitForMultipleObjects(count, handles, wait_all ? 0 : 1, alertable,
                                               timeout_of(milliseconds, &timeout));
    SINK(status);
    return (DWORD)status;
}

EXPORT DWORD WaitForMultipleObjects(DWORD count, HANDLE *handles, BOOL wait_all, DWORD milliseconds)
{
    DWORD result = WaitForMultipleObjectsEx(count, handles, wait_all, milliseconds, 0);
    SINK(result);
    return result;
}

EXPORT DWORD SleepEx(DWORD milliseconds, BOOL alertable)
{
    long long timeout;
    NTSTATUS status = NtDelayExecution(alertable, timeout_of(milliseconds, &timeout));
    SINK(status);
    return 0;
}

EXPORT void Sleep(DWORD milliseconds)
{
    SINK(SleepEx(milliseconds, 0));
}

EXPORT BOOL GetQueuedCompletionStatus(HANDLE port, DWORD *bytes, ULONG_PTR *key, PVOID *overlapped,
                                      DWORD milliseconds)
{
    IO_STATUS_BLOCK iosb;
    long long timeout;
    PVOID k = 0;
    NTSTATUS status = NtRemoveIoCompletion(port, &k, overlapped, &iosb, timeout_of(milliseconds, &timeout));
    *bytes = (DWORD)iosb.Information;
    *key = (ULONG_PTR)k;
    return status == 0;
}

/* ---- files ------------------------------------------------------------------------------ */

EXPORT HANDLE CreateFileInternal(LPCWSTR name, DWORD access, DWORD share, PVOID sa, DWORD disposition, DWORD flags,
                                 HANDLE template_file)
{
    UNICODE_STRING path;
    init_string(&path, name);
    OBJECT_ATTRIBUTES attributes = {sizeof(attributes), 0, &path, 0x40, sa, 0};
    IO_STATUS_BLOCK iosb;
    HANDLE file = 0;
    NTSTATUS status = NtCreateFile(&file, access | 0x100080, &attributes, &iosb, 0, flags & 0xFFFF, share,
                                   disposition, 0x60, 0, 0);
    SINK(template_file);
    return status >= 0 ? file : (HANDLE)(ULONG_PTR)-1;
}

EXPORT HANDLE CreateFileW(LPCWSTR name, DWORD access, DWORD share, PVOID sa, DWORD disposition, DWORD flags,
                          HANDLE template_file)
{
    HANDLE file = CreateFileInternal(name, access, share, sa, disposition, flags, template_file);
    SINK(file);
    return file;
}

EXPORT BOOL WriteFile(HANDLE file, const void *buffer, DWORD size, DWORD *written, PVOID overlapped)
{
    IO_STATUS_BLOCK iosb = {0, 0};
    NTSTATUS status = NtWriteFile(file, 0, 0, overlapped, &iosb, (PVOID)buffer, size, 0, 0);
    if (written)
        *written = (DWORD)iosb.Information;
    return status >= 0;
}

EXPORT BOOL ReadFile(HANDLE file, void *buffer, DWORD size, DWORD *read, PVOID overlapped)
{
    IO_STATUS_BLOCK iosb = {0, 0};
    NTSTATUS status = NtReadFile(file, 0, 0, overlapped, &iosb, buffer, size, 0, 0);
    if (read)
        *read = (DWORD)iosb.Information;
    return status >= 0;
}

EXPORT BOOL SetFileInformationByHandle(HANDLE file, DWORD info_class, PVOID info, DWORD size)
{
    IO_STATUS_BLOCK iosb;
    NTSTATUS status = NtSetInformationFile(file, &iosb, info, size, info_class);
    SINK(iosb.Information);
    return status >= 0;
}

typedef struct _FILE_RENAME_INFO {
    BOOL ReplaceIfExists;
    HANDLE RootDirectory;
    ULONG FileNameLength;
    WCHAR FileName[260];
} FILE_RENAME_INFO;

EXPORT BOOL MoveFileWithProgressTransactedW(LPCWSTR existing, LPCWSTR target, PVOID progress, PVOID data,
                                            DWORD flags, HANDLE transaction)
{
    UNICODE_STRING source;
    init_string(&source, existing);
    OBJECT_ATTRIBUTES attributes = {sizeof(attributes), 0, &source, 0x40, 0, 0};
    IO_STATUS_BLOCK iosb;
    HANDLE file = 0;
    FILE_RENAME_INFO rename;
    NTSTATUS status = NtOpenFile(&file, 0x110080, &attributes, &iosb, 7, 0x204020);
    ULONG n = 0;
    while (target[n] && n < 259) {
        rename.FileName[n] = target[n];
        n++;
    }
    rename.ReplaceIfExists = (flags & 1) != 0;
    rename.RootDirectory = 0;
    rename.FileNameLength = n * 2;
    if (status >= 0)
        status = NtSetInformationFile(file, &iosb, &rename, sizeof(rename), 10 /* FileRenameInformation */);
    SINK(NtClose(file));
    SINK(progress);
    SINK(data);
    SINK(transaction);
    return status >= 0;
}

EXPORT BOOL MoveFileWithProgressW(LPCWSTR existing, LPCWSTR target, PVOID progress, PVOID data, DWORD flags)
{
    BOOL ok = MoveFileWithProgressTransactedW(existing, target, progress, data, flags, 0);
    SINK(ok);
    return ok;
}

EXPORT BOOL MoveFileExW(LPCWSTR existing, LPCWSTR target, DWORD flags)
{
    BOOL ok = MoveFileWithProgressTransactedW(existing, target, 0, 0, flags, 0);
    SINK(ok);
    return ok;
}

EXPORT BOOL DeviceIoControl(HANDLE device, DWORD code, PVOID in, DWORD in_size, PVOID out, DWORD out_size,
                            DWORD *returned, PVOID overlapped)
{
    IO_STATUS_BLOCK iosb = {0, 0};
    NTSTATUS status = NtDeviceIoControlFile(device, 0, 0, overlapped, &iosb, code, in, in_size, out, out_size);
    if (returned)
        *returned = (DWORD)iosb.Information;
    return status >= 0;
}

EXPORT BOOL ConnectNamedPipe(HANDLE pipe, PVOID overlapped)
{
    IO_STATUS_BLOCK iosb;
    NTSTATUS status = NtFsControlFile(pipe, 0, 0, overlapped, &iosb, 0x110008, 0, 0, 0, 0);
    SINK(iosb.Status);
    return status >= 0;
}

/* ---- loader and memory ------------------------------------------------------------------- */

EXPORT HMODULE LoadLibraryExW(LPCWSTR name, HANDLE file, DWORD flags)
{
    UNICODE_STRING dll;
    init_string(&dll, name);
    PVOID base = 0;
    ULONG characteristics = flags & 2 ? 2 : 0;
    NTSTATUS status = LdrLoadDll(0, &characteristics, &dll, &base);
    SINK(file);
    return status >= 0 ? (HMODULE)base : 0;
}

EXPORT HMODULE LoadLibraryW(LPCWSTR name)
{
    HMODULE module = LoadLibraryExW(name, 0, 0);
    SINK(module);
    return module;
}

EXPORT HMODULE LoadLibraryExA(LPCSTR name, HANDLE file, DWORD flags)
{
    HMODULE module = LoadLibraryExW((LPCWSTR)name, file, flags);
    SINK(module);
    return module;
}

EXPORT HMODULE LoadLibraryA(LPCSTR name)
{
    HMODULE module = LoadLibraryExA(name, 0, 0);
    SINK(module);
    return module;
}

EXPORT PVOID MapViewOfFileEx(HANDLE section, DWORD access, DWORD high, DWORD low, SIZE_T size, PVOID base)
{
    SIZE_T view = size;
    NTSTATUS status = NtMapViewOfSection(section, CURRENT_PROCESS, &base, 0, 0, 0, &view, 1, 0, access);
    SINK(((ULONGLONG)high << 32) | low);
    return status >= 0 ? base : 0;
}

EXPORT PVOID MapViewOfFile(HANDLE section, DWORD access, DWORD high, DWORD low, SIZE_T size)
{
    PVOID view = MapViewOfFileEx(section, access, high, low, size, 0);
    SINK(view);
    return view;
}

EXPORT HANDLE CreateRemoteThreadEx(HANDLE process, PVOID sa, SIZE_T stack, PTHREAD_START start, PVOID param,
                                   DWORD flags, PVOID attributes, DWORD *tid)
{
    HANDLE thread = 0;
    NTSTATUS status = NtCreateThreadEx(&thread, 0x1FFFFF, sa, process, (PVOID)start, param, flags & 4, 0, 0, stack,
                                       attributes);
    SINK(tid);
    return status >= 0 ? thread : 0;
}

EXPORT PVOID VirtualAlloc(PVOID address, SIZE_T size, DWORD type, DWORD protect)
{
    NTSTATUS status = NtAllocateVirtualMemory(CURRENT_PROCESS, &address, 0, &size, type, protect);
    SINK(size);
    return status >= 0 ? address : 0;
}

EXPORT BOOL VirtualProtect(PVOID address, SIZE_T size, DWORD protect, DWORD *old)
{
    NTSTATUS status = NtProtectVirtualMemory(CURRENT_PROCESS, &address, &size, protect, (ULONG *)old);
    SINK(size);
    return status >= 0;
}

/* ---- registry ------------------------------------------------------------------------------- */

EXPORT LONG LocalBaseRegSetValue(HKEY key, LPCWSTR name, DWORD type, const BYTE *data, DWORD size)
{
    UNICODE_STRING value;
    init_string(&value, name);
    NTSTATUS status = NtSetValueKey(key, &value, 0, type, (PVOID)data, size);
    SINK(status);
    return status;
}

EXPORT LONG RegSetValueExW(HKEY key, LPCWSTR name, DWORD reserved, DWORD type, const BYTE *data, DWORD size)
{
    LONG result = LocalBaseRegSetValue(key, name, type, data, size);
    SINK(reserved);
    return result;
}

EXPORT LONG RegCreateKeyExW(HKEY key, LPCWSTR subkey, DWORD reserved, LPWSTR cls, DWORD options, DWORD access,
                            PVOID sa, HKEY *result, DWORD *disposition)
{
    UNICODE_STRING name;
    init_string(&name, subkey);
    OBJECT_ATTRIBUTES attributes = {sizeof(attributes), key, &name, 0x40, sa, 0};
    NTSTATUS status = NtCreateKey((HANDLE *)result, access, &attributes, 0, 0, options, (ULONG *)disposition);
    SINK(reserved);
    SINK(cls);
    return status;
}

/* ---- bytes a call-stack spoofer looks for --------------------------------------------------- */
/* Real system DLLs hold a call through a register followed at once by `ret` or `jmp <register>`
   somewhere in their code (often inside longer instructions); a spoofer returns into such bytes
   to make a frame look as if kernelbase made it. Here they stand in a function of their own that
   nothing calls: `call r10; ret` (return address +3) and `call rax; jmp rbx` (+6). x64 only. */
#ifdef __x86_64__
__asm__(".text\n"
        ".p2align 4\n"
        ".globl BaseSpareGadgets\n"
        "BaseSpareGadgets:\n"
        "\tcall *%r10\n"
        "\tret\n"
        "\tcall *%rax\n"
        "\tjmp *%rbx\n"
        "\tint3\n");
#endif
