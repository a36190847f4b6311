/*
 * Chained unwind info (UNW_FLAG_CHAININFO), written by hand: gas's .seh_*
 * directives cannot emit it, so this file lays out its own .pdata and .xdata.
 *
 *   chained_fn / chained_part2   "shrink-wrapping": the second part of the function
 *       saves more (push rsi; sub rsp, 0x28) and its unwind info has its own codes
 *       and then chains to the primary entry (push rbx; sub rsp, 0x20).
 *       Frame: 0x28 + 8 + 0x20 + 8 = 0x58 bytes below the return address.
 *   chained_hot / chained_cold   the MSVC "cold part" form: the cold block lives
 *       elsewhere and its unwind info has no codes, only the chain to the primary.
 *
 * UNWIND_INFO: byte 0 = version 1 | flags << 3, byte 1 = prolog size, byte 2 = code
 * count, byte 3 = frame register/offset; codes are (prolog offset, op | info << 4),
 * last prolog instruction first; a chained RUNTIME_FUNCTION follows the codes.
 */
    .intel_syntax noprefix
    .text

    .globl chained_fn
    .globl chained_part2
    .globl chained_sleep_ret
    .def chained_fn; .scl 2; .type 32; .endef
chained_fn:
    push rbx                    /* ends at prolog offset 1 */
    sub rsp, 0x20               /* 48 83 ec 20: ends at 5 */
    mov rbx, rcx
chained_part2:
    push rsi                    /* ends at 1 within part 2 */
    sub rsp, 0x28               /* ends at 5 within part 2 */
1:  mov ecx, -1
    call [rip + __imp_Sleep]
chained_sleep_ret:
    jmp 1b
chained_end:

    .globl chained_hot
    .globl chained_cold
    .globl chained_cold_ret
    .def chained_hot; .scl 2; .type 32; .endef
chained_hot:
    push rbx
    sub rsp, 0x20
    jmp chained_cold
chained_hot_end:
    int3
    .p2align 4
chained_cold:
2:  mov ecx, -1
    call [rip + __imp_Sleep]
chained_cold_ret:
    jmp 2b
chained_cold_end:

    .section .xdata, "dr"
    .p2align 2
chained_fn_info:
    .byte 0x01, 5, 2, 0
    .byte 5, 0x32               /* UWOP_ALLOC_SMALL (0x20 - 8) / 8 = 3 */
    .byte 1, 0x30               /* UWOP_PUSH_NONVOL rbx (3) */
    .p2align 2
chained_part2_info:
    .byte 0x01 | (4 << 3), 5, 2, 0
    .byte 5, 0x42               /* UWOP_ALLOC_SMALL (0x28 - 8) / 8 = 4 */
    .byte 1, 0x60               /* UWOP_PUSH_NONVOL rsi (6) */
    .rva chained_fn, chained_part2, chained_fn_info
    .p2align 2
chained_hot_info:
    .byte 0x01, 5, 2, 0
    .byte 5, 0x32
    .byte 1, 0x30
    .p2align 2
chained_cold_info:
    .byte 0x01 | (4 << 3), 0, 0, 0
    .rva chained_hot, chained_hot_end, chained_hot_info

    .section .pdata, "dr"
    .p2align 2
    .rva chained_fn, chained_part2, chained_fn_info
    .rva chained_part2, chained_end, chained_part2_info
    .rva chained_hot, chained_hot_end, chained_hot_info
    .rva chained_cold, chained_cold_end, chained_cold_info
