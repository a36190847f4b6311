/*
 * Image-backed callers for code in private memory, with labels right after
 * each call so the program can print the exact return addresses it expects.
 * Both record their own callers first (cf_capture_callers, Wine's
 * RtlCaptureStackBackTrace): winedbg cannot unwind through unbacked code, so the
 * part of the stack above it comes from the program itself.
 *
 *   rwx_syscall_loop(stub, timespec, callers)   calls a direct-syscall stub with
 *       RDI = timespec and RSI = 0 (the Linux nanosleep arguments: under Wine the
 *       syscall instruction goes straight to the host kernel), forever: a signal
 *       (Wine suspending the thread) ends nanosleep with EINTR.
 *   call_shellcode(code, arg, callers)          calls code(arg).
 */
    .intel_syntax noprefix
    .text

    .globl rwx_syscall_loop
    .globl rwx_syscall_loop_ret
    .def rwx_syscall_loop; .scl 2; .type 32; .endef
    .seh_proc rwx_syscall_loop
rwx_syscall_loop:
    push rdi
    .seh_pushreg rdi
    push rsi
    .seh_pushreg rsi
    push rbx
    .seh_pushreg rbx
    push r12
    .seh_pushreg r12
    sub rsp, 0x28
    .seh_stackalloc 0x28
    .seh_endprologue
    mov rbx, rcx
    mov r12, rdx
    mov rcx, r8
    call cf_capture_callers
1:  mov rdi, r12
    xor esi, esi
    mov rcx, r12
    call rbx
rwx_syscall_loop_ret:
    jmp 1b
    .seh_endproc

    .globl call_shellcode
    .globl call_shellcode_ret
    .def call_shellcode; .scl 2; .type 32; .endef
    .seh_proc call_shellcode
call_shellcode:
    push rbx
    .seh_pushreg rbx
    push rsi
    .seh_pushreg rsi
    sub rsp, 0x28
    .seh_stackalloc 0x28
    .seh_endprologue
    mov rbx, rcx
    mov rsi, rdx
    mov rcx, r8
    call cf_capture_callers
    mov rcx, rsi
    call rbx
call_shellcode_ret:
    add rsp, 0x28
    pop rsi
    pop rbx
    ret
    .seh_endproc
