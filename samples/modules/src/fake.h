/* Types and conventions shared by the fake system modules.
 *
 * The modules are small but real: every exported function is compiled code whose
 * body makes a genuine call (direct, through the import table, or through a
 * pointer), so a return address into it always follows a real call instruction,
 * and the compiler's .pdata/.xdata describe its frame. No Windows headers: the
 * fakes declare what they use, and nothing here ever runs.
 */
#pragma once

typedef unsigned char BYTE;
typedef unsigned short WCHAR, USHORT, WORD;
typedef unsigned int DWORD, ULONG, UINT;
typedef int BOOL, LONG, NTSTATUS;
typedef unsigned long long ULONGLONG;
typedef __SIZE_TYPE__ SIZE_T, ULONG_PTR;
typedef void *HANDLE, *PVOID, *HMODULE, *HKEY, *HWND, *LPSTREAM;
typedef const WCHAR *LPCWSTR;
typedef WCHAR *LPWSTR;
typedef const char *LPCSTR;

typedef struct _UNICODE_STRING {
    USHORT Length;
    USHORT MaximumLength;
    WCHAR *Buffer;
} UNICODE_STRING;

typedef struct _OBJECT_ATTRIBUTES {
    ULONG Length;
    HANDLE RootDirectory;
    UNICODE_STRING *ObjectName;
    ULONG Attributes;
    PVOID SecurityDescriptor;
    PVOID SecurityQualityOfService;
} OBJECT_ATTRIBUTES;

typedef struct _IO_STATUS_BLOCK {
    ULONG_PTR Status;
    ULONG_PTR Information;
} IO_STATUS_BLOCK;

typedef void (*PTHREAD_START)(PVOID);
typedef ULONG (*PWORK_CALLBACK)(PVOID, PVOID);

#define EXPORT __declspec(dllexport) __attribute__((noinline))
#define INTERNAL __attribute__((noinline))
#define IMPORT __declspec(dllimport)

#define CURRENT_PROCESS ((HANDLE)(ULONG_PTR)-1)
#define INFINITE 0xFFFFFFFFu

/* A sink the optimiser cannot remove: keeps bodies honest and calls non-tail. */
extern volatile ULONG_PTR g_sink;
#define SINK(x) (g_sink += (ULONG_PTR)(x))
#define DEFINE_SINK volatile ULONG_PTR g_sink;

#define DEFINE_DLLMAIN \
    BOOL DllMain(HANDLE module, DWORD reason, PVOID reserved) { SINK(module); SINK(reason); SINK(reserved); return 1; }
