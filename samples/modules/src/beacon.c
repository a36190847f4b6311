/* beacon.dll: the sample implant a reflective loader maps by hand (never through the loader): a
 * check-in loop with its tasks, each a function of its own with .pdata and unwind data, as any
 * compiled DLL has. Scenarios lay it out in private memory (`pe = "beacon.dll"`). */
#include "fake.h"

DEFINE_SINK
DEFINE_DLLMAIN

IMPORT void Sleep(DWORD);

typedef ULONG_PTR (*PTASK)(PVOID, ULONG);

/* The task table the check-in fills; calls through it are genuine indirect calls. */
volatile PTASK g_tasks[8];

INTERNAL ULONG_PTR RunTask(ULONG id, PVOID data, ULONG size)
{
    ULONG_PTR result = g_tasks[id & 7](data, size);
    SINK(result);
    return result;
}

EXPORT ULONG_PTR TaskShell(PVOID data, ULONG size) { ULONG_PTR r = RunTask(1, data, size); SINK(r); return r; }
EXPORT ULONG_PTR TaskUpload(PVOID data, ULONG size) { ULONG_PTR r = RunTask(2, data, size); SINK(r); return r; }
EXPORT ULONG_PTR TaskDownload(PVOID data, ULONG size) { ULONG_PTR r = RunTask(3, data, size); SINK(r); return r; }
EXPORT ULONG_PTR TaskInject(PVOID data, ULONG size) { ULONG_PTR r = RunTask(4, data, size); SINK(r); return r; }
EXPORT ULONG_PTR TaskScreenshot(PVOID data, ULONG size) { ULONG_PTR r = RunTask(5, data, size); SINK(r); return r; }
EXPORT ULONG_PTR TaskKeylog(PVOID data, ULONG size) { ULONG_PTR r = RunTask(6, data, size); SINK(r); return r; }

INTERNAL void Xor(BYTE *buffer, ULONG size, BYTE key)
{
    for (ULONG i = 0; i < size; i++)
        buffer[i] ^= key;
    SINK(RunTask(0, buffer, size));
}

EXPORT void EncryptBuffer(BYTE *buffer, ULONG size) { Xor(buffer, size, 0x5a); SINK(size); }
EXPORT void DecryptBuffer(BYTE *buffer, ULONG size) { Xor(buffer, size, 0x5a); SINK(buffer); }

EXPORT ULONG ParseTasks(BYTE *reply, ULONG size)
{
    DecryptBuffer(reply, size);
    ULONG_PTR result = RunTask(reply[0], reply + 1, size - 1);
    SINK(result);
    return (ULONG)result;
}

EXPORT ULONG Checkin(BYTE *buffer, ULONG size)
{
    EncryptBuffer(buffer, size);
    ULONG tasks = ParseTasks(buffer, size);
    SINK(tasks);
    return tasks;
}

EXPORT void SleepMask(DWORD milliseconds)
{
    EncryptBuffer((BYTE *)g_tasks, sizeof(g_tasks));
    Sleep(milliseconds);
    DecryptBuffer((BYTE *)g_tasks, sizeof(g_tasks));
}

EXPORT ULONG BeaconMain(PVOID parameter)
{
    BYTE buffer[64];
    for (;;) {
        SINK(Checkin(buffer, sizeof(buffer)));
        SleepMask(60000);
        SINK(parameter);
    }
    return 0;
}

EXPORT PVOID ReflectiveLoader(PVOID base)
{
    ULONG result = BeaconMain(base);
    SINK(result);
    return base;
}
