/* ntdll.dll, continued: ETW's event writer and QueueUserAPC's dispatcher. Built after the system-call
 * stubs, so adding them moved none of the functions before them. */
#include "fake.h"

NTSTATUS NtTraceEvent(HANDLE, ULONG, ULONG, PVOID);

typedef void (*PAPCFUNC)(ULONG_PTR);

/* Every ETW event a user-mode provider writes goes through here to the kernel: patching it to
 * return at once (or breaking on NtTraceEvent) blinds ETW consumers such as EDRs. */
EXPORT ULONG EtwEventWrite(ULONGLONG handle, PVOID descriptor, ULONG count, PVOID data)
{
    NTSTATUS status = NtTraceEvent((HANDLE)handle, 0x10000, count, data);
    SINK(descriptor);
    return (ULONG)status;
}

/* QueueUserAPC queues this with the caller's routine as the APC's context: KiUserApcDispatcher
 * calls it, and it calls the routine. */
EXPORT void RtlDispatchAPC(PAPCFUNC routine, ULONG_PTR data, PVOID activation_context)
{
    routine(data);
    SINK(activation_context);
}
