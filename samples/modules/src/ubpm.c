/* ubpm.dll: the Unified Background Process Manager; scheduled tasks start through its trigger consumers. */
#include "fake.h"

DEFINE_SINK
DEFINE_DLLMAIN

IMPORT BOOL CreateProcessAsUserW(HANDLE, LPCWSTR, LPWSTR, PVOID, PVOID, BOOL, DWORD, PVOID, LPCWSTR, PVOID, PVOID);

typedef struct _TRIGGER_CONSUMER {
    HANDLE token;
    LPCWSTR application;
    LPWSTR command_line;
} TRIGGER_CONSUMER;

/* Starts the consumer of a fired trigger: for a task action, its process. */
EXPORT ULONG UbpmOpenTriggerConsumer(TRIGGER_CONSUMER *consumer, ULONG flags)
{
    BYTE startup[104] = {0};
    BYTE process[24] = {0};
    BOOL ok = CreateProcessAsUserW(consumer->token, consumer->application, consumer->command_line, 0, 0, 0,
                                   0x08000400, 0, 0, startup, process);
    SINK(flags);
    return ok ? 0 : 1;
}

/* Thread-pool callback when a trigger fires. */
EXPORT ULONG UbpmpTriggerConsumerCallback(PVOID context, PVOID work)
{
    ULONG result = UbpmOpenTriggerConsumer((TRIGGER_CONSUMER *)context, 1);
    SINK(work);
    return result;
}
