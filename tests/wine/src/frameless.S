/*
 * Frameless functions whose unwind data uses the opcodes gcc rarely or never
 * emits. Each one waits forever in Sleep with RBP (and RBX) clobbered, and is
 * called from a C function that keeps a frame pointer (UWOP_SET_FPREG): an
 * unwinder that does not restore RBP from the saved slot computes the wrong
 * frame for that caller, so a mistake cannot pass unnoticed.
 *
 *   fl_alloc16     __chkstk + UWOP_ALLOC_LARGE, 16-bit operand (0x2010 bytes)
 *   fl_save_near   UWOP_ALLOC_SMALL, UWOP_SAVE_NONVOL (rbp, rbx), UWOP_SAVE_XMM128 (xmm6)
 *   fl_alloc32     __chkstk + UWOP_ALLOC_LARGE, 32-bit operand (> 512K: 0x110008 bytes),
 *                  UWOP_SAVE_NONVOL_FAR (rbp at +0x100000), UWOP_SAVE_XMM128_FAR (xmm6 at
 *                  +0x100010), UWOP_SAVE_NONVOL (rbx at +0x20)
 *   fl_fpreg_dyn   UWOP_PUSH_NONVOL x2, UWOP_ALLOC_SMALL, UWOP_SET_FPREG with offset 0x30,
 *                  then a dynamic allocation the unwind data does not describe: only
 *                  the frame register gives the right answer
 *
 * gas picks the short or far encodings from the offsets (checked by the tests
 * against the built image's .xdata).
 */
    .intel_syntax noprefix
    .text

#define GARBAGE 0x5a5a5a5a5a5a5a5a

    .globl fl_alloc16
    .def fl_alloc16; .scl 2; .type 32; .endef
    .seh_proc fl_alloc16
fl_alloc16:
    push rbx
    .seh_pushreg rbx
    mov eax, 0x2010
    call ___chkstk_ms
    sub rsp, rax
    .seh_stackalloc 0x2010
    .seh_endprologue
    mov qword ptr [rsp + 0x1800], rbx
    movabs rbx, GARBAGE
1:  mov ecx, -1
    call [rip + __imp_Sleep]
    jmp 1b
    .seh_endproc

    .globl fl_save_near
    .def fl_save_near; .scl 2; .type 32; .endef
    .seh_proc fl_save_near
fl_save_near:
    sub rsp, 0x68
    .seh_stackalloc 0x68
    mov qword ptr [rsp + 0x40], rbp
    .seh_savereg rbp, 0x40
    mov qword ptr [rsp + 0x48], rbx
    .seh_savereg rbx, 0x48
    movaps xmmword ptr [rsp + 0x50], xmm6
    .seh_savexmm xmm6, 0x50
    .seh_endprologue
    movabs rbp, GARBAGE
    movabs rbx, GARBAGE
    xorps xmm6, xmm6
2:  mov ecx, -1
    call [rip + __imp_Sleep]
    jmp 2b
    .seh_endproc

    .globl fl_alloc32
    .def fl_alloc32; .scl 2; .type 32; .endef
    .seh_proc fl_alloc32
fl_alloc32:
    mov eax, 0x110008
    call ___chkstk_ms
    sub rsp, rax
    .seh_stackalloc 0x110008
    mov qword ptr [rsp + 0x100000], rbp
    .seh_savereg rbp, 0x100000
    movaps xmmword ptr [rsp + 0x100010], xmm6
    .seh_savexmm xmm6, 0x100010
    mov qword ptr [rsp + 0x20], rbx
    .seh_savereg rbx, 0x20
    .seh_endprologue
    movabs rbp, GARBAGE
    movabs rbx, GARBAGE
    xorps xmm6, xmm6
3:  mov ecx, -1
    call [rip + __imp_Sleep]
    jmp 3b
    .seh_endproc

    .globl fl_fpreg_dyn
    .def fl_fpreg_dyn; .scl 2; .type 32; .endef
    .seh_proc fl_fpreg_dyn
fl_fpreg_dyn:
    push rbp
    .seh_pushreg rbp
    push rsi
    .seh_pushreg rsi
    sub rsp, 0x48
    .seh_stackalloc 0x48
    lea rbp, [rsp + 0x30]
    .seh_setframe rbp, 0x30
    .seh_endprologue
    /* Dynamic allocation (like alloca): RSP moves by an amount only known at run time. */
    mov eax, ecx
    and eax, 0xff0
    add eax, 0x230
    sub rsp, rax
    movabs rsi, GARBAGE
4:  mov ecx, -1
    call [rip + __imp_Sleep]
    jmp 4b
    .seh_endproc
