/* ntdll.dll: thread start, loader, process creation and fork, thread pool, waits.
 * The Nt* system call stubs come from syscalls.txt (ntdll_stubs_*.S). */
#include "fake.h"

DEFINE_SINK
DEFINE_DLLMAIN

NTSTATUS NtWaitForSingleObject(HANDLE, BOOL, PVOID);
NTSTATUS NtMapViewOfSection(HANDLE, HANDLE, PVOID *, ULONG_PTR, SIZE_T, PVOID, SIZE_T *, ULONG, ULONG, ULONG);
NTSTATUS NtCreateSection(HANDLE *, ULONG, PVOID, PVOID, ULONG, ULONG, HANDLE);
NTSTATUS NtOpenFile(HANDLE *, ULONG, OBJECT_ATTRIBUTES *, IO_STATUS_BLOCK *, ULONG, ULONG);
NTSTATUS NtClose(HANDLE);
NTSTATUS NtCreateUserProcess(HANDLE *, HANDLE *, ULONG, ULONG, PVOID, PVOID, ULONG, ULONG, PVOID, PVOID, PVOID);
NTSTATUS NtCreateThreadEx(HANDLE *, ULONG, PVOID, HANDLE, PVOID, PVOID, ULONG, SIZE_T, SIZE_T, SIZE_T, PVOID);
NTSTATUS NtTerminateThread(HANDLE, NTSTATUS);
NTSTATUS NtTerminateProcess(HANDLE, NTSTATUS);
NTSTATUS NtContinue(PVOID, BOOL);
NTSTATUS NtWaitForWorkViaWorkerFactory(HANDLE, PVOID, ULONG, ULONG *, PVOID);
NTSTATUS NtWaitForAlertByThreadId(PVOID, PVOID);
NTSTATUS NtDelayExecution(BOOL, PVOID);

/* Pointers the loader fills in; the forge binds them to the modules mapped in each process. */
EXPORT PVOID Kernel32ThreadInitThunkFunction;
EXPORT PVOID Wow64LdrpInitializeFunction;
#ifndef _WIN64
EXPORT PVOID Wow64Transition;
#endif

typedef void (*PTHREAD_INIT_THUNK)(ULONG, PVOID, PVOID);
typedef void (*PLDR_INIT)(PVOID);
typedef void (*PAPC_ROUTINE)(PVOID, PVOID, PVOID);

EXPORT NTSTATUS RtlExitUserThread(NTSTATUS status)
{
    NTSTATUS result = NtTerminateThread((HANDLE)(ULONG_PTR)-2, status);
    SINK(result);
    return result;
}

/* Every user thread starts here: kernel32's thunk (through the loader-set pointer) runs the routine. */
EXPORT void RtlUserThreadStart(PTHREAD_START start, PVOID param)
{
    PTHREAD_INIT_THUNK thunk = (PTHREAD_INIT_THUNK)Kernel32ThreadInitThunkFunction;
    if (thunk)
        thunk(0, (PVOID)start, param);
    else
        start(param);
    SINK(RtlExitUserThread(0));
}

/* ---- loader ------------------------------------------------------------------------ */

EXPORT NTSTATUS LdrpMinimalMapModule(HANDLE section, PVOID *base)
{
    SIZE_T view = 0;
    NTSTATUS status = NtMapViewOfSection(section, CURRENT_PROCESS, base, 0, 0, 0, &view, 1, 0x800000, 0x80);
    SINK(view);
    return status;
}

EXPORT NTSTATUS LdrpMapDllWithSectionHandle(HANDLE section, PVOID *base)
{
    NTSTATUS status = LdrpMinimalMapModule(section, base);
    SINK(*base);
    return status;
}

EXPORT NTSTATUS LdrpMapDllNtFileName(UNICODE_STRING *name, PVOID *base)
{
    OBJECT_ATTRIBUTES attributes = {sizeof(attributes), 0, name, 0x40, 0, 0};
    IO_STATUS_BLOCK iosb;
    HANDLE file = 0, section = 0;
    NTSTATUS status = NtOpenFile(&file, 0x100021, &attributes, &iosb, 5, 0x60);
    if (status >= 0)
        status = NtCreateSection(&section, 0xF001F, 0, 0, 0x10, 0x1000000, file);
    if (status >= 0)
        status = LdrpMapDllWithSectionHandle(section, base);
    SINK(NtClose(file));
    return status;
}

EXPORT NTSTATUS LdrpLoadDllInternal(UNICODE_STRING *name, ULONG flags, PVOID *base)
{
    NTSTATUS status = LdrpMapDllNtFileName(name, base);
    SINK(flags);
    return status;
}

EXPORT NTSTATUS LdrpLoadDll(UNICODE_STRING *name, ULONG flags, PVOID *base)
{
    NTSTATUS status = LdrpLoadDllInternal(name, flags | 0x4, base);
    SINK(name->Length);
    return status;
}

EXPORT NTSTATUS LdrLoadDll(WCHAR *search_path, ULONG *characteristics, UNICODE_STRING *name, PVOID *base)
{
    ULONG flags = characteristics ? *characteristics : 0;
    NTSTATUS status = LdrpLoadDll(name, flags, base);
    SINK(search_path);
    return status;
}

EXPORT NTSTATUS LdrpInitializeProcess(PVOID context)
{
    static WCHAR kernel32[] = {'k', 'e', 'r', 'n', 'e', 'l', '3', '2', '.', 'd', 'l', 'l', 0};
    UNICODE_STRING name = {24, 26, kernel32};
    PVOID base = 0;
    NTSTATUS status = LdrpLoadDll(&name, 0, &base);
    SINK(context);
    return status;
}

EXPORT void LdrpInitialize(PVOID context)
{
    PLDR_INIT wow64 = (PLDR_INIT)Wow64LdrpInitializeFunction;
    if (wow64)
        wow64(context);
    else
        SINK(LdrpInitializeProcess(context));
}

EXPORT void LdrInitializeThunk(PVOID context)
{
    LdrpInitialize(context);
    SINK(NtContinue(context, 1));
}

/* ---- process creation and fork --------------------------------------------------------- */

EXPORT NTSTATUS RtlCreateUserThread(HANDLE process, PVOID sd, BOOL suspended, ULONG zero, SIZE_T reserve,
                                    SIZE_T commit, PTHREAD_START start, PVOID param, HANDLE *thread, PVOID cid)
{
    NTSTATUS status = NtCreateThreadEx(thread, 0x1FFFFF, 0, process, (PVOID)start, param, suspended ? 1 : 0,
                                       zero, commit, reserve, 0);
    SINK(sd);
    SINK(cid);
    return status;
}

EXPORT NTSTATUS RtlCloneUserProcess(ULONG flags, PVOID process_sd, PVOID thread_sd, HANDLE debug_port, PVOID info)
{
    HANDLE process = 0, thread = 0;
    NTSTATUS status = NtCreateUserProcess(&process, &thread, 0x2000000, 0x2000000, 0, 0, flags | 0x201, 1, 0,
                                          info, 0);
    SINK(process_sd);
    SINK(thread_sd);
    SINK(debug_port);
    return status;
}

typedef struct _REFLECTION_CONTEXT {
    PTHREAD_START start;
    PVOID param;
    ULONG flags;
} REFLECTION_CONTEXT;

INTERNAL ULONG RtlpProcessReflectionStartup(REFLECTION_CONTEXT *context);

/* Reflecting the current process clones it here; another process gets a thread that clones it. */
EXPORT NTSTATUS RtlCreateProcessReflection(HANDLE process, ULONG flags, PTHREAD_START start, PVOID param,
                                           HANDLE event, PVOID info)
{
    if (process == CURRENT_PROCESS) {
        NTSTATUS status = RtlCloneUserProcess(flags, 0, 0, 0, info);
        SINK(event);
        return status;
    }
    HANDLE thread = 0;
    static REFLECTION_CONTEXT context;
    context.start = start;
    context.param = param;
    NTSTATUS status = RtlCreateUserThread(process, 0, 0, 0, 0, 0, (PTHREAD_START)RtlpProcessReflectionStartup,
                                          &context, &thread, 0);
    SINK(thread);
    return status;
}

/* Not exported: symbolised from exports it reads as RtlCreateProcessReflection+offset, as on Windows. */
INTERNAL ULONG RtlpProcessReflectionStartup(REFLECTION_CONTEXT *context)
{
    NTSTATUS status = RtlCloneUserProcess(context->flags, 0, 0, 0, 0);
    if (status == 0x129 && context->start) /* STATUS_PROCESS_CLONED: this is the clone */
        context->start(context->param);
    SINK(NtTerminateProcess(CURRENT_PROCESS, status));
    return 0;
}

EXPORT NTSTATUS RtlCreateUserProcess(UNICODE_STRING *image, ULONG attributes, PVOID parameters, PVOID process_sd,
                                     PVOID thread_sd, HANDLE parent, BOOL inherit, HANDLE debug, HANDLE token,
                                     PVOID info)
{
    HANDLE process = 0, thread = 0;
    NTSTATUS status = NtCreateUserProcess(&process, &thread, 0x1FFFFF, 0x1FFFFF, process_sd, thread_sd,
                                          inherit ? 4 : 0, 0, parameters, info, 0);
    SINK(image);
    SINK(attributes);
    SINK(parent);
    SINK(debug);
    SINK(token);
    return status;
}

/* ---- waits and the thread pool -------------------------------------------------------- */

EXPORT NTSTATUS RtlpWaitOnCriticalSection(PVOID section, ULONG timeout)
{
    NTSTATUS status = NtWaitForSingleObject(*(HANDLE *)section, 0, 0);
    SINK(timeout);
    return status;
}

EXPORT NTSTATUS RtlEnterCriticalSection(PVOID section)
{
    NTSTATUS status = RtlpWaitOnCriticalSection(section, 0);
    SINK(section);
    return status;
}

EXPORT NTSTATUS RtlSleepConditionVariableSRW(PVOID variable, PVOID lock, PVOID timeout, ULONG flags)
{
    NTSTATUS status = NtWaitForAlertByThreadId(variable, timeout);
    SINK(lock);
    SINK(flags);
    return status;
}

EXPORT ULONG TppWorkpExecuteCallback(PWORK_CALLBACK callback, PVOID context)
{
    ULONG result = callback(context, 0);
    SINK(result);
    return result;
}

typedef struct _TP_WORK {
    PWORK_CALLBACK callback;
    PVOID context;
} TP_WORK;

EXPORT ULONG TppWorkerThread(PVOID pool)
{
    TP_WORK work = {0, 0};
    ULONG count = 0;
    for (;;) {
        NTSTATUS status = NtWaitForWorkViaWorkerFactory(pool, &work, 1, &count, 0);
        if (status < 0)
            break;
        if (work.callback)
            SINK(TppWorkpExecuteCallback(work.callback, work.context));
    }
    return count;
}

EXPORT ULONG TppTimerpExecuteCallback(PWORK_CALLBACK callback, PVOID context)
{
    ULONG result = callback(context, (PVOID)1);
    SINK(NtDelayExecution(0, 0));
    return result;
}

EXPORT void KiUserApcDispatcher(PVOID context, PAPC_ROUTINE routine, PVOID argument)
{
    routine(argument, 0, 0);
    SINK(NtContinue(context, 1));
}
