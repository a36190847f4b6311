/*
 * Code the unwinder must handle without (complete) unwind data.
 *
 *   leaf_spin          no .pdata entry, RSP never moved: a leaf. The thread spins
 *                      here, so this is frame 0 and the return address is at [RSP].
 *   prolog_spin        has unwind data, but the thread spins *inside the prolog*,
 *                      after `push rbx` and before `sub rsp, 0x20`: only the unwind
 *                      codes whose offset lies at or before RIP may be undone.
 *   nounwind_sleeper   no .pdata entry, RSP never moved, but calls Sleep: when
 *                      unwinding reaches its return address the function must be
 *                      treated as a leaf (return address at [RSP]).
 *
 * About nounwind_sleeper: a function that calls without reserving a home area
 * lets the callee's home area overlap its own return address. Real code never
 * does this; here it is safe because Wine 8's kernelbase!Sleep does not spill
 * its argument (the tests check the return address is intact: winedbg and the
 * program's own report must agree).
 *
 * The spinning threads burn a CPU only until the debugger stops the process.
 */
    .intel_syntax noprefix
    .text

    .globl leaf_spin
    .globl leaf_spin_end
    .def leaf_spin; .scl 2; .type 32; .endef
leaf_spin:
    pause
    jmp leaf_spin
leaf_spin_end:
    ret

    .globl prolog_spin
    .globl prolog_spin_loop
    .globl prolog_spin_loop_end
    .def prolog_spin; .scl 2; .type 32; .endef
    .seh_proc prolog_spin
prolog_spin:
    push rbx
    .seh_pushreg rbx
prolog_spin_loop:
    pause
    jmp prolog_spin_loop
prolog_spin_loop_end:
    sub rsp, 0x20
    .seh_stackalloc 0x20
    .seh_endprologue
    add rsp, 0x20
    pop rbx
    ret
    .seh_endproc

    .globl nounwind_sleeper
    .globl nounwind_sleeper_ret
    .def nounwind_sleeper; .scl 2; .type 32; .endef
nounwind_sleeper:
    mov ecx, -1
    call [rip + __imp_Sleep]
nounwind_sleeper_ret:
    jmp nounwind_sleeper
