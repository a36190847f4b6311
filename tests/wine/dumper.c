/*
 * dumper.exe PID OUT.dmp [full|normal] [append]
 *
 * Writes a minidump of a running process with dbghelp's MiniDumpWriteDump, the
 * way procdump does on Windows, so that the stack engine can be checked against
 * real process memory captured under Wine.
 *
 * Why a helper at all: winedbg's own `minidump` command writes only a normal
 * dump (stacks, no full memory), and the engine needs the code and data of every
 * module to unwind.
 *
 * Why the extra MemoryInfoListStream: Wine's dbghelp (8.0) writes no
 * MemoryInfoList even with MiniDumpWithFullMemoryInfo, so a Wine dump would say
 * nothing about page protections and every frame would read `Unknown`. The
 * RWX test programs need the real protections, so this helper walks the target
 * with VirtualQueryEx and adds the standard stream (type 16,
 * MINIDUMP_MEMORY_INFO_LIST + MINIDUMP_MEMORY_INFO entries). It is first offered
 * through MiniDumpWriteDump's UserStreamParam (the documented way to add
 * streams); if the written file has no such stream (a dbghelp that ignores user
 * streams), it is appended to the file and the stream directory is rewritten at
 * the end of the file with one more entry (the header's StreamDirectoryRva is
 * patched to point at it).
 *
 * `normal` writes MiniDumpNormal (thread stacks only, no full memory) plus the
 * same MemoryInfoList; a later issue reads such dumps.
 *
 * Why the debug registers: Windows' dbghelp records each thread's CONTEXT with
 * CONTEXT_ALL, debug registers included (the real Windows dumps in ../shared/realdata
 * say ContextFlags 0x10001f), but Wine's (8.0) asks for CONTEXT_FULL only, so its
 * dumps never hold Dr0-Dr7. After writing, this helper reads each dumped thread's
 * debug registers with GetThreadContext(CONTEXT_DEBUG_REGISTERS) and writes them into
 * that thread's CONTEXT record (x64 offsets 0x48-0x70), adding the flag, as Windows'
 * writer would have. A thread it cannot open keeps its record as dbghelp wrote it.
 *
 * `append` skips UserStreamParam so that the append-and-patch fallback runs
 * even on a dbghelp that honours user streams (Wine 8's does): the tests use it
 * to prove the fallback writes a valid file.
 *
 * Exit status: 0 on success, 2 on bad usage, 1 on any failure (with a message
 * naming the step on stderr).
 */
#include <windows.h>
#include <dbghelp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>

#define MEMORY_INFO_LIST_STREAM 16

typedef struct {
    MINIDUMP_MEMORY_INFO *entries;
    ULONG64 count;
    ULONG64 capacity;
} info_vec;

static int fail(const char *step)
{
    fprintf(stderr, "dumper: %s failed (error %lu)\n", step, GetLastError());
    return 1;
}

static int info_push(info_vec *vec, const MEMORY_BASIC_INFORMATION *mbi)
{
    MINIDUMP_MEMORY_INFO *entry;
    if (vec->count == vec->capacity) {
        ULONG64 cap = vec->capacity ? vec->capacity * 2 : 256;
        void *grown = realloc(vec->entries, cap * sizeof(*vec->entries));
        if (!grown) return 0;
        vec->entries = grown;
        vec->capacity = cap;
    }
    entry = &vec->entries[vec->count++];
    memset(entry, 0, sizeof(*entry));
    entry->BaseAddress = (ULONG64)(ULONG_PTR)mbi->BaseAddress;
    entry->AllocationBase = (ULONG64)(ULONG_PTR)mbi->AllocationBase;
    entry->AllocationProtect = mbi->AllocationProtect;
    entry->RegionSize = mbi->RegionSize;
    entry->State = mbi->State;
    entry->Protect = mbi->Protect;
    entry->Type = mbi->Type;
    return 1;
}

/* Every region of the target's user address space, free ones included (as Windows writes them). */
static int collect_memory_info(HANDLE process, info_vec *vec)
{
    SYSTEM_INFO si;
    MEMORY_BASIC_INFORMATION mbi;
    ULONG_PTR addr;
    ULONG_PTR top;

    GetSystemInfo(&si);
    top = (ULONG_PTR)si.lpMaximumApplicationAddress;
    addr = 0;
    while (addr <= top) {
        if (VirtualQueryEx(process, (LPCVOID)addr, &mbi, sizeof(mbi)) != sizeof(mbi)) break;
        if (!info_push(vec, &mbi)) return 0;
        if ((ULONG_PTR)mbi.BaseAddress + mbi.RegionSize <= addr) break; /* no progress: stop */
        addr = (ULONG_PTR)mbi.BaseAddress + mbi.RegionSize;
    }
    return vec->count > 0;
}

/* The stream's bytes: MINIDUMP_MEMORY_INFO_LIST header followed by the entries. */
static void *build_info_stream(const info_vec *vec, ULONG *size)
{
    MINIDUMP_MEMORY_INFO_LIST header;
    ULONG64 body = vec->count * sizeof(MINIDUMP_MEMORY_INFO);
    char *buf = malloc(sizeof(header) + body);
    if (!buf) return NULL;
    header.SizeOfHeader = sizeof(header);
    header.SizeOfEntry = sizeof(MINIDUMP_MEMORY_INFO);
    header.NumberOfEntries = vec->count;
    memcpy(buf, &header, sizeof(header));
    memcpy(buf + sizeof(header), vec->entries, body);
    *size = (ULONG)(sizeof(header) + body);
    return buf;
}

static int read_at(HANDLE file, ULONG64 offset, void *buf, DWORD size)
{
    LARGE_INTEGER pos;
    DWORD got = 0;
    pos.QuadPart = (LONGLONG)offset;
    if (!SetFilePointerEx(file, pos, NULL, FILE_BEGIN)) return 0;
    return ReadFile(file, buf, size, &got, NULL) && got == size;
}

static int write_at(HANDLE file, ULONG64 offset, const void *buf, DWORD size)
{
    LARGE_INTEGER pos;
    DWORD put = 0;
    pos.QuadPart = (LONGLONG)offset;
    if (!SetFilePointerEx(file, pos, NULL, FILE_BEGIN)) return 0;
    return WriteFile(file, buf, size, &put, NULL) && put == size;
}

/* 1 when the written dump's directory already names a MemoryInfoList, 0 when not, -1 on error. */
static int has_stream(HANDLE file, ULONG32 type, MINIDUMP_HEADER *header, MINIDUMP_DIRECTORY **dir)
{
    ULONG32 i;
    if (!read_at(file, 0, header, sizeof(*header))) return -1;
    if (header->Signature != 0x504d444dU /* "MDMP" */ || header->NumberOfStreams > 4096) return -1;
    *dir = calloc(header->NumberOfStreams + 1, sizeof(MINIDUMP_DIRECTORY));
    if (!*dir) return -1;
    if (!read_at(file, header->StreamDirectoryRva, *dir,
                 header->NumberOfStreams * sizeof(MINIDUMP_DIRECTORY))) return -1;
    for (i = 0; i < header->NumberOfStreams; i++)
        if ((*dir)[i].StreamType == type) return 1;
    return 0;
}

/*
 * Fallback for a dbghelp that drops user streams: the stream goes at the end of
 * the file, then a copy of the directory with one more entry, then the header
 * is patched. RVAs are 32-bit, so this only works below 4 GiB (true here).
 */
static int append_stream(HANDLE file, ULONG32 type, const void *data, ULONG size)
{
    MINIDUMP_HEADER header;
    MINIDUMP_DIRECTORY *dir = NULL;
    LARGE_INTEGER end;
    ULONG64 stream_rva, dir_rva;
    int found = has_stream(file, type, &header, &dir);

    if (found != 0) { free(dir); return found == 1; }
    if (!GetFileSizeEx(file, &end)) { free(dir); return 0; }
    stream_rva = ((ULONG64)end.QuadPart + 7) & ~7ULL;
    dir_rva = (stream_rva + size + 7) & ~7ULL;
    if (dir_rva + (header.NumberOfStreams + 1) * sizeof(MINIDUMP_DIRECTORY) > 0xFFFFFFFFULL) {
        free(dir);
        SetLastError(ERROR_FILE_TOO_LARGE);
        return 0;
    }
    dir[header.NumberOfStreams].StreamType = type;
    dir[header.NumberOfStreams].Location.DataSize = size;
    dir[header.NumberOfStreams].Location.Rva = (RVA)stream_rva;
    header.NumberOfStreams += 1;
    header.StreamDirectoryRva = (RVA)dir_rva;
    if (!write_at(file, stream_rva, data, size)
        || !write_at(file, dir_rva, dir, header.NumberOfStreams * sizeof(MINIDUMP_DIRECTORY))
        || !write_at(file, 0, &header, sizeof(header))) {
        free(dir);
        return 0;
    }
    free(dir);
    return 1;
}

/*
 * Dr0-Dr3, Dr6 and Dr7 of every dumped thread into its CONTEXT (see the top of this file).
 * Returns the number of threads filled, or -1 when the thread list cannot be read.
 */
static int fill_debug_registers(HANDLE file)
{
    MINIDUMP_HEADER header;
    MINIDUMP_DIRECTORY *dir = NULL;
    MINIDUMP_THREAD_LIST list;
    ULONG32 i, n;
    int filled = 0;
    ULONG64 at = 0;
    if (has_stream(file, ThreadListStream, &header, &dir) != 1) { free(dir); return -1; }
    for (i = 0; i < header.NumberOfStreams; i++)
        if (dir[i].StreamType == ThreadListStream) at = dir[i].Location.Rva;
    free(dir);
    if (!read_at(file, at, &list, sizeof(list.NumberOfThreads))) return -1;
    n = list.NumberOfThreads;
    for (i = 0; i < n; i++) {
        MINIDUMP_THREAD thread;
        CONTEXT ctx;
        HANDLE handle;
        ULONG32 flags;
        if (!read_at(file, at + 4 + (ULONG64)i * sizeof(thread), &thread, sizeof(thread))) return -1;
        if (thread.ThreadContext.DataSize < sizeof(CONTEXT)) continue;
        handle = OpenThread(THREAD_GET_CONTEXT, FALSE, thread.ThreadId);
        if (!handle) continue;
        memset(&ctx, 0, sizeof(ctx));
        ctx.ContextFlags = CONTEXT_DEBUG_REGISTERS;
        if (GetThreadContext(handle, &ctx)
            && read_at(file, thread.ThreadContext.Rva + offsetof(CONTEXT, ContextFlags), &flags, sizeof(flags))) {
            flags |= CONTEXT_DEBUG_REGISTERS;
            if (write_at(file, thread.ThreadContext.Rva + offsetof(CONTEXT, Dr0), &ctx.Dr0, 6 * sizeof(DWORD64))
                && write_at(file, thread.ThreadContext.Rva + offsetof(CONTEXT, ContextFlags), &flags, sizeof(flags)))
                filled++;
        }
        CloseHandle(handle);
    }
    return filled;
}

int main(int argc, char **argv)
{
    DWORD pid;
    HANDLE process, file;
    MINIDUMP_TYPE type = MiniDumpWithFullMemory | MiniDumpWithFullMemoryInfo
                       | MiniDumpWithThreadInfo | MiniDumpWithHandleData;
    MINIDUMP_USER_STREAM user;
    MINIDUMP_USER_STREAM_INFORMATION users;
    int force_append = argc == 5 && strcmp(argv[4], "append") == 0;
    info_vec infos = {0};
    void *stream;
    ULONG stream_size = 0;

    if (argc < 3 || argc > 5 || (argc == 5 && !force_append)) {
        fprintf(stderr, "usage: dumper.exe PID OUT.dmp [full|normal] [append]\n");
        return 2;
    }
    pid = strtoul(argv[1], NULL, 0);
    if (argc >= 4 && strcmp(argv[3], "normal") == 0)
        type = MiniDumpNormal | MiniDumpWithThreadInfo;
    else if (argc >= 4 && strcmp(argv[3], "full") != 0) {
        fprintf(stderr, "dumper: unknown mode %s\n", argv[3]);
        return 2;
    }

    process = OpenProcess(PROCESS_QUERY_INFORMATION | PROCESS_VM_READ | PROCESS_DUP_HANDLE, FALSE, pid);
    if (!process) return fail("OpenProcess");
    if (!collect_memory_info(process, &infos)) return fail("VirtualQueryEx walk");
    stream = build_info_stream(&infos, &stream_size);
    if (!stream) return fail("building MemoryInfoList");

    file = CreateFileA(argv[2], GENERIC_READ | GENERIC_WRITE, 0, NULL, CREATE_ALWAYS,
                       FILE_ATTRIBUTE_NORMAL, NULL);
    if (file == INVALID_HANDLE_VALUE) return fail("CreateFile");

    user.Type = MEMORY_INFO_LIST_STREAM;
    user.BufferSize = stream_size;
    user.Buffer = stream;
    users.UserStreamCount = 1;
    users.UserStreamArray = &user;
    if (!MiniDumpWriteDump(process, pid, file, type, NULL, force_append ? NULL : &users, NULL))
        return fail("MiniDumpWriteDump");
    if (!append_stream(file, MEMORY_INFO_LIST_STREAM, stream, stream_size))
        return fail("appending MemoryInfoList");
    if (fill_debug_registers(file) < 0)
        return fail("filling the threads' debug registers");

    CloseHandle(file);
    CloseHandle(process);
    free(stream);
    free(infos.entries);
    printf("{\"dump\": \"%s\", \"memory_info_entries\": %llu}\n", argv[2],
           (unsigned long long)infos.count);
    return 0;
}
