/*
  System-call stubs outside ntdll.dll and win32u.dll.

  Only ntdll and win32u hold stubs that load a system-call number and execute `syscall`;
  the same bytes in private executable memory are hand-written stubs (SysWhispers,
  Hell's Gate, direct-syscall loaders) used to bypass user-mode hooks. The scanner only
  runs these rules over unbacked executable memory, so a match is never ntdll itself.
*/

rule Syscall_Stub_In_Unbacked_Memory
{
    meta:
        description = "mov r10, rcx; mov eax, <number>; syscall: a system-call stub in private executable memory"
        reference = "https://www.elastic.co/security-labs/peeling-back-the-curtain-with-call-stacks"
        severity = "high"
    strings:
        // mov r10, rcx (4c 8b d1 or 49 89 ca); mov eax, imm32 (number < 0x10000); syscall
        $stub_a = { 4c 8b d1 b8 ?? ?? 00 00 0f 05 }
        $stub_b = { 49 89 ca b8 ?? ?? 00 00 0f 05 }
        // the number loaded earlier, then mov r10, rcx; syscall
        $stub_c = { b8 ?? ?? 00 00 [0-16] 4c 8b d1 0f 05 }
        $stub_d = { b8 ?? ?? 00 00 [0-16] 49 89 ca 0f 05 }
    condition:
        any of them
}

rule Syscall_Indirect_Jump_To_Ntdll
{
    meta:
        description = "mov r10, rcx; mov eax, <number>; jmp [address]: an indirect syscall stub that borrows ntdll's syscall instruction"
        severity = "medium"
    strings:
        $jmp_mem = { 4c 8b d1 b8 ?? ?? 00 00 ff 25 }
        $jmp_reg = { 4c 8b d1 b8 ?? ?? 00 00 49 bb ?? ?? ?? ?? ?? ?? 00 00 41 ff e3 }
    condition:
        any of them
}

rule Heavens_Gate_Far_Transition
{
    meta:
        description = "32-bit code switching to the 64-bit code segment (push 0x33 ... retf): Heaven's Gate"
        severity = "high"
    strings:
        $push_call_retf = { 6a 33 e8 00 00 00 00 83 04 24 05 cb }
        $far_jmp_33 = { ea ?? ?? ?? ?? 33 00 }
    condition:
        any of them
}
