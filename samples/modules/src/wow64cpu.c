/* wow64cpu.dll: runs 32-bit code and turns its system calls (far jumps to 64-bit code) into calls to
 * wow64!Wow64SystemServiceEx. */
#include "fake.h"

DEFINE_SINK
DEFINE_DLLMAIN

IMPORT NTSTATUS Wow64SystemServiceEx(ULONG, ULONG *);

typedef struct _CPU_CONTEXT {
    ULONG Eax;
    ULONG Esp;
    ULONG Eip;
} CPU_CONTEXT;

EXPORT volatile CPU_CONTEXT *CpuContext;

EXPORT void BTCpuSimulate(void)
{
    volatile CPU_CONTEXT *context = CpuContext;
    NTSTATUS status = Wow64SystemServiceEx(context->Eax, (ULONG *)(ULONG_PTR)(context->Esp + 4));
    context->Eax = (ULONG)status;
    SINK(context->Eip);
}
