/* The 32-bit entry of wow64cpu: 32-bit ntdll's Wow64Transition points here; a far jump to the 64-bit
 * code segment (0x33) leaves the simulation. Kept as bytes: this DLL is assembled as x64. */
    .section .text
    .globl KiFastSystemCall
    .p2align 4
KiFastSystemCall:
    .byte 0xea, 0x00, 0x00, 0x00, 0x00, 0x33, 0x00   /* jmp far 0033:00000000 (patched when loaded) */
    .byte 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc
