/*
 * The shellcode-like routine shellcode.c and sleepmask.c place in private memory: it calls
 * Sleep (its argument, in rcx) through a register, so its frame is unbacked, has no unwind
 * data and moves RSP.
 *
 *   53                push rbx
 *   48 83 ec 20       sub rsp, 0x20        (moves RSP: no leaf, and no unwind data)
 *   48 89 cb          mov rbx, rcx         (rcx = address of Sleep)
 *   b9 ff ff ff ff    mov ecx, INFINITE
 *   ff d3             call rbx             -> return site = code + 15
 *   eb f7             jmp back to mov ecx
 *
 * call_shellcode (rwx_helpers.S) calls it from image code and records its callers.
 */
#ifndef SLEEP_ROUTINE_H
#define SLEEP_ROUTINE_H

void call_shellcode(const void *code, void *arg, cf_callers *callers);
extern char call_shellcode_ret[];

static const unsigned char sleep_routine[] = {
    0x53,
    0x48, 0x83, 0xec, 0x20,
    0x48, 0x89, 0xcb,
    0xb9, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xd3,
    0xeb, 0xf7,
};
#define CODE_OFFSET 0x200   /* where the routine sits in its 0x2000-byte allocation */
#define RETURN_SITE 15      /* its return site, after `call rbx` */

#endif
