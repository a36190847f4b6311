/* Compiler support routines every module links privately (no C runtime: -nostdlib). */
#include "fake.h"

void *memset(void *dst, int value, SIZE_T size)
{
    volatile BYTE *p = (volatile BYTE *)dst;
    while (size--)
        *p++ = (BYTE)value;
    return dst;
}

void *memcpy(void *dst, const void *src, SIZE_T size)
{
    volatile BYTE *d = (volatile BYTE *)dst;
    const BYTE *s = (const BYTE *)src;
    while (size--)
        *d++ = *s++;
    return dst;
}
