/* wow64.dll: the 64-bit side of every 32-bit system call, and the CPU simulation loop. */
#include "fake.h"

DEFINE_SINK
DEFINE_DLLMAIN

IMPORT NTSTATUS NtDelayExecution(BOOL, PVOID);
IMPORT NTSTATUS NtWaitForSingleObject(HANDLE, BOOL, PVOID);
IMPORT NTSTATUS NtWaitForMultipleObjects(ULONG, HANDLE *, ULONG, BOOL, PVOID);
IMPORT NTSTATUS NtCreateUserProcess(HANDLE *, HANDLE *, ULONG, ULONG, PVOID, PVOID, ULONG, ULONG, PVOID, PVOID, PVOID);
IMPORT NTSTATUS NtCreateFile(HANDLE *, ULONG, OBJECT_ATTRIBUTES *, IO_STATUS_BLOCK *, PVOID, ULONG, ULONG, ULONG,
                             ULONG, PVOID, ULONG);
IMPORT NTSTATUS NtWriteFile(HANDLE, HANDLE, PVOID, PVOID, IO_STATUS_BLOCK *, PVOID, ULONG, PVOID, PVOID);
IMPORT NTSTATUS NtSetInformationFile(HANDLE, IO_STATUS_BLOCK *, PVOID, ULONG, ULONG);
IMPORT NTSTATUS NtRemoveIoCompletion(HANDLE, PVOID *, PVOID *, IO_STATUS_BLOCK *, PVOID);
/* wow64 loads the CPU simulator DLL at run time (wow64cpu on x64); the forge binds this pointer. */
EXPORT void (*pfnBTCpuSimulate)(void);

static PVOID thunk(ULONG value)
{
    return (PVOID)(ULONG_PTR)value;
}

EXPORT NTSTATUS whNtDelayExecution(ULONG *args)
{
    long long interval = args[1] ? *(long long *)thunk(args[1]) : 0;
    NTSTATUS status = NtDelayExecution(args[0], args[1] ? &interval : 0);
    SINK(interval);
    return status;
}

EXPORT NTSTATUS whNtWaitForSingleObject(ULONG *args)
{
    long long timeout = args[2] ? *(long long *)thunk(args[2]) : 0;
    NTSTATUS status = NtWaitForSingleObject(thunk(args[0]), args[1], args[2] ? &timeout : 0);
    SINK(timeout);
    return status;
}

EXPORT NTSTATUS whNtWaitForMultipleObjects32(ULONG *args)
{
    HANDLE handles[64];
    ULONG count = args[0] < 64 ? args[0] : 64;
    ULONG *source = (ULONG *)thunk(args[1]);
    for (ULONG i = 0; i < count; i++)
        handles[i] = thunk(source[i]);
    NTSTATUS status = NtWaitForMultipleObjects(count, handles, args[2], args[3], thunk(args[4]));
    SINK(handles[0]);
    return status;
}

EXPORT NTSTATUS whNtCreateUserProcess(ULONG *args)
{
    HANDLE process = 0, thread = 0;
    NTSTATUS status = NtCreateUserProcess(&process, &thread, args[2], args[3], thunk(args[4]), thunk(args[5]),
                                          args[6], args[7], thunk(args[8]), thunk(args[9]), thunk(args[10]));
    SINK(process);
    return status;
}

EXPORT NTSTATUS whNtCreateFile(ULONG *args)
{
    HANDLE file = 0;
    IO_STATUS_BLOCK iosb;
    NTSTATUS status = NtCreateFile(&file, args[1], (OBJECT_ATTRIBUTES *)thunk(args[2]), &iosb, thunk(args[4]),
                                   args[5], args[6], args[7], args[8], thunk(args[9]), args[10]);
    SINK(file);
    return status;
}

EXPORT NTSTATUS whNtWriteFile(ULONG *args)
{
    IO_STATUS_BLOCK iosb;
    NTSTATUS status = NtWriteFile(thunk(args[0]), thunk(args[1]), thunk(args[2]), thunk(args[3]), &iosb,
                                  thunk(args[5]), args[6], thunk(args[7]), thunk(args[8]));
    SINK(iosb.Information);
    return status;
}

EXPORT NTSTATUS whNtSetInformationFile(ULONG *args)
{
    IO_STATUS_BLOCK iosb;
    NTSTATUS status = NtSetInformationFile(thunk(args[0]), &iosb, thunk(args[2]), args[3], args[4]);
    SINK(iosb.Information);
    return status;
}

EXPORT NTSTATUS whNtRemoveIoCompletion(ULONG *args)
{
    IO_STATUS_BLOCK iosb;
    PVOID key = 0, apc = 0;
    NTSTATUS status = NtRemoveIoCompletion(thunk(args[0]), &key, &apc, &iosb, thunk(args[4]));
    SINK(key);
    return status;
}

typedef NTSTATUS (*PSERVICE_HANDLER)(ULONG *);

static PSERVICE_HANDLER service_table[] = {
    whNtDelayExecution, whNtWaitForSingleObject, whNtWaitForMultipleObjects32, whNtCreateUserProcess,
    whNtCreateFile, whNtWriteFile, whNtSetInformationFile, whNtRemoveIoCompletion,
};

/* Dispatches one 32-bit system call to its thunk (which calls the 64-bit ntdll stub). */
EXPORT NTSTATUS Wow64SystemServiceEx(ULONG number, ULONG *args)
{
    NTSTATUS status = service_table[number % (sizeof(service_table) / sizeof(service_table[0]))](args);
    SINK(number);
    return status;
}

EXPORT void RunCpuSimulation(void)
{
    for (;;)
        pfnBTCpuSimulate();
}

EXPORT void Wow64LdrpInitialize(PVOID context)
{
    SINK(context);
    RunCpuSimulation();
}
