/* rpcrt4.dll: the RPC server path (ALPC completion -> dispatch -> NDR stub -> Invoke -> server routine)
 * and the listening loop idle RPC threads wait in. */
#include "fake.h"

DEFINE_SINK
DEFINE_DLLMAIN

IMPORT NTSTATUS NtAlpcSendWaitReceivePort(HANDLE, ULONG, PVOID, PVOID, PVOID, SIZE_T *, PVOID, PVOID);

typedef ULONG_PTR (*PSERVER_ROUTINE)(PVOID, PVOID, PVOID, PVOID);

typedef struct _RPC_MESSAGE {
    PVOID Handle;
    ULONG DataRepresentation;
    PVOID Buffer;
    ULONG BufferLength;
    ULONG ProcNum;
    PSERVER_ROUTINE *DispatchTable;
    PVOID Arguments[4];
} RPC_MESSAGE;

/* Calls the server routine with the unmarshalled arguments. */
EXPORT ULONG_PTR Invoke(PSERVER_ROUTINE routine, PVOID *arguments, ULONG count)
{
    ULONG_PTR result = routine(arguments[0], arguments[1], arguments[2], arguments[3]);
    SINK(count);
    return result;
}

EXPORT LONG NdrStubCall2(PVOID stub, PVOID channel, RPC_MESSAGE *message, ULONG *phase)
{
    ULONG_PTR result = Invoke(message->DispatchTable[message->ProcNum], message->Arguments, 4);
    SINK(stub);
    SINK(channel);
    SINK(phase);
    return (LONG)result;
}

EXPORT void NdrServerCall2(RPC_MESSAGE *message)
{
    ULONG phase = 0;
    SINK(NdrStubCall2(0, 0, message, &phase));
}

EXPORT LONG LrpcDispatchRequest(PVOID call, RPC_MESSAGE *message)
{
    NdrServerCall2(message);
    SINK(call);
    return 0;
}

/* The thread-pool callback ALPC completions arrive on. */
EXPORT ULONG LrpcIoComplete(PVOID context, PVOID work)
{
    LONG result = LrpcDispatchRequest(work, (RPC_MESSAGE *)context);
    SINK(result);
    return 0;
}

EXPORT LONG LrpcReceiveLoop(HANDLE port)
{
    BYTE message[0x100];
    SIZE_T length = sizeof(message);
    NTSTATUS status = NtAlpcSendWaitReceivePort(port, 0x20000, 0, 0, message, &length, 0, 0);
    SINK(message[0]);
    return status;
}

EXPORT LONG RpcServerListen(UINT min_threads, UINT max_calls, UINT dont_wait)
{
    LONG status = LrpcReceiveLoop((HANDLE)(ULONG_PTR)0x2C8);
    SINK(min_threads);
    SINK(max_calls);
    SINK(dont_wait);
    return status;
}
