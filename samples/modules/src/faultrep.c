/* faultrep.dll: Windows Error Reporting's fault reporting; it reflects a faulting process to dump it. */
#include "fake.h"

DEFINE_SINK
DEFINE_DLLMAIN

IMPORT NTSTATUS RtlCreateProcessReflection(HANDLE, ULONG, PVOID, PVOID, HANDLE, PVOID);

EXPORT LONG WerpCreateProcessReflection(HANDLE process, PVOID info)
{
    NTSTATUS status = RtlCreateProcessReflection(process, 0x6, 0, 0, 0, info);
    SINK(status);
    return status;
}

EXPORT LONG WerpReportFaultInternal(HANDLE process, PVOID exception)
{
    LONG result = WerpCreateProcessReflection(process, exception);
    SINK(result);
    return result;
}
