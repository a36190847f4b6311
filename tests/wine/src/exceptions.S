/*
 * A function protected by a frame-based exception handler, as a compiler
 * emits one for __try/__except: .pdata names a language-specific handler
 * (UNW_FLAG_EHANDLER) for seh_guarded. It records its callers, then raises
 * an exception; RtlDispatchException finds the handler while unwinding the
 * stack and calls it, and the handler (seh_blocking_handler, in C) never
 * returns.
 *
 *   seh_guarded(callers)   rcx = cf_callers to fill
 */
    .intel_syntax noprefix
    .text

    .globl seh_guarded
    .globl seh_guarded_ret
    .def seh_guarded; .scl 2; .type 32; .endef
    .seh_proc seh_guarded
seh_guarded:
    push rbx
    .seh_pushreg rbx
    sub rsp, 0x20
    .seh_stackalloc 0x20
    .seh_endprologue
    .seh_handler seh_blocking_handler, @except
    call cf_capture_callers
    mov ecx, 0xE0C0FFEE         /* RaiseException(code, flags 0, no arguments) */
    xor edx, edx
    xor r8d, r8d
    xor r9d, r9d
    call [rip + __imp_RaiseException]
seh_guarded_ret:
    nop
    add rsp, 0x20
    pop rbx
    ret
    .seh_endproc
