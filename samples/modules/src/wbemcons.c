/* wbemcons.dll: WMI standard event consumers; the command-line consumer starts a process per event. */
#include "fake.h"

DEFINE_SINK
DEFINE_DLLMAIN

IMPORT BOOL CreateProcessW(LPCWSTR, LPWSTR, PVOID, PVOID, BOOL, DWORD, PVOID, LPCWSTR, PVOID, PVOID);

typedef struct _CONSUMER {
    LPCWSTR executable;
    LPWSTR command_line;
} CONSUMER;

EXPORT LONG DllCanUnloadNow(void)
{
    return 1;
}

EXPORT LONG DllGetClassObject(PVOID clsid, PVOID iid, PVOID *object)
{
    static CONSUMER empty;
    *object = &empty;
    SINK(clsid);
    return iid ? 0 : 1;
}

EXPORT LONG CCommandLineConsumer_Execute(CONSUMER *consumer)
{
    BYTE startup[104] = {0};
    BYTE process[24] = {0};
    BOOL ok = CreateProcessW(consumer->executable, consumer->command_line, 0, 0, 0, 0x08000000, 0, 0, startup,
                             process);
    SINK(ok);
    return ok ? 0 : 1;
}

/* IWbemUnboundObjectSink::IndicateToConsumer: one call per event delivered to the consumer. */
EXPORT LONG CCommandLineConsumer_IndicateToConsumer(CONSUMER *self, PVOID logical_consumer, LONG count,
                                                    PVOID *objects)
{
    LONG result = CCommandLineConsumer_Execute(self);
    SINK(logical_consumer);
    SINK(count);
    SINK(objects);
    return result;
}
