/* wersvc.dll: the Windows Error Reporting service; crash reports arrive over RPC. */
#include "fake.h"

DEFINE_SINK
DEFINE_DLLMAIN

IMPORT LONG WerpReportFaultInternal(HANDLE, PVOID);
IMPORT LONG RpcServerListen(UINT, UINT, UINT);

EXPORT void ServiceMain(DWORD argc, LPWSTR *argv)
{
    SINK(RpcServerListen(1, 10, 1));
    SINK(argc);
    SINK(argv);
}

EXPORT LONG WerSvcReportCrash(HANDLE process, PVOID exception, PVOID report)
{
    LONG result = WerpReportFaultInternal(process, exception);
    SINK(report);
    return result;
}
