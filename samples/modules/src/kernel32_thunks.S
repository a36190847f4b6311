/* kernel32.dll, continued: exports that are one jump through kernel32's own import table into
 * kernelbase, as Windows 10's kernel32 ships most of its API. They jump out of the module, yet
 * nobody patched them: the pointer they read is kernel32's IAT slot. */
    .text
    .globl CreateFileW
    .p2align 4
CreateFileW:
    jmp *__imp_CreateFileW(%rip)
    .globl WaitForSingleObject
    .p2align 4
WaitForSingleObject:
    jmp *__imp_WaitForSingleObject(%rip)
    .section .drectve
    .ascii " -export:CreateFileW -export:WaitForSingleObject"
