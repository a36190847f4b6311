/* ole32.dll: OLE object persistence to and from streams backed by files, and COM waits. */
#include "fake.h"

DEFINE_SINK
DEFINE_DLLMAIN

IMPORT HANDLE CreateFileW(LPCWSTR, DWORD, DWORD, PVOID, DWORD, DWORD, HANDLE);
IMPORT BOOL WriteFile(HANDLE, const void *, DWORD, DWORD *, PVOID);
IMPORT BOOL ReadFile(HANDLE, void *, DWORD, DWORD *, PVOID);
IMPORT DWORD WaitForMultipleObjectsEx(DWORD, HANDLE *, BOOL, DWORD, BOOL);

typedef struct _FILE_STREAM {
    HANDLE file;
    LPCWSTR path;
    const BYTE *data;
    DWORD size;
} FILE_STREAM;

EXPORT LONG CFileStream_Open(FILE_STREAM *stream, DWORD access)
{
    stream->file = CreateFileW(stream->path, access, 1, 0, 2, 0x80, 0);
    SINK(stream->file);
    return stream->file == (HANDLE)(ULONG_PTR)-1 ? -1 : 0;
}

EXPORT LONG CFileStream_WriteAt(FILE_STREAM *stream, DWORD offset)
{
    DWORD written = 0;
    BOOL ok = WriteFile(stream->file, stream->data, stream->size, &written, 0);
    SINK(offset);
    return ok ? (LONG)written : -1;
}

/* Saves an embedded object: the stream it writes to may be a file on disk. */
EXPORT LONG OleSaveToStream(PVOID persist, FILE_STREAM *stream)
{
    LONG result = CFileStream_Open(stream, 0x40000000);
    if (result == 0)
        result = CFileStream_WriteAt(stream, 0);
    SINK(persist);
    return result;
}

EXPORT LONG OleLoadFromStream(FILE_STREAM *stream, PVOID iid, PVOID *object)
{
    LONG result = CFileStream_Open(stream, 0x80000000);
    SINK(iid);
    SINK(object);
    return result;
}

/* Loads an embedded object from storage (opening or creating the file it is backed by). */
EXPORT LONG OleLoad(FILE_STREAM *storage, PVOID iid, PVOID site, PVOID *object)
{
    LONG result = OleLoadFromStream(storage, iid, object);
    SINK(site);
    return result;
}

EXPORT LONG CoWaitForMultipleHandles(DWORD flags, DWORD timeout, ULONG count, HANDLE *handles, ULONG *index)
{
    DWORD result = WaitForMultipleObjectsEx(count, handles, 0, timeout, flags & 2);
    *index = result;
    return 0;
}
