/*
  Common traits of position-independent shellcode, matched in unbacked executable memory.

  Compiled code rarely needs these: the x64 ABI keeps the stack aligned, reads the PEB
  through the loader's API, and resolves imports through an import table. Shellcode
  aligns the stack itself, walks the PEB's loader list, and finds APIs by hashing their
  names (ROR 13 is the classic Metasploit / Cobalt Strike hash).
*/

rule Shellcode_Stack_Alignment_Prologue_x64
{
    meta:
        description = "and rsp, -16 within the first bytes of a region: shellcode aligning its own stack"
        severity = "medium"
    strings:
        $and_rsp = { 48 83 e4 f0 }
    condition:
        $and_rsp in (0..64)
}

rule Shellcode_Metasploit_Style_Stager
{
    meta:
        description = "cld; and rsp, -16; call: the start of Metasploit/Cobalt Strike x64 stagers, or cld; call; pushad (x86)"
        severity = "high"
    strings:
        $x64 = { fc 48 83 e4 f0 e8 }
        $x86 = { fc e8 ?? 00 00 00 60 89 e5 }
    condition:
        any of them
}

rule Shellcode_PEB_Walk
{
    meta:
        description = "reads the PEB (gs:[0x60] / fs:[0x30]) then its Ldr list: shellcode locating modules without the loader"
        severity = "medium"
    strings:
        $peb64 = { 65 48 8b ?? 25 60 00 00 00 }
        $peb64_rex = { 65 4? 8b ?? 25 60 00 00 00 }
        $peb32 = { 64 a1 30 00 00 00 }
        $peb32_reg = { 64 8b ?? 30 }
        $ldr64 = { 48 8b ?? 18 }
        $ldr32 = { 8b ?? 0c }
    condition:
        (any of ($peb64*) and $ldr64) or (any of ($peb32*) and $ldr32)
}

rule Shellcode_ROR13_API_Hashing
{
    meta:
        description = "ror 13 name hashing loop (ror edi/r9d, 0xd; add): API resolution by hash"
        severity = "high"
    strings:
        $ror_edi = { c1 cf 0d 01 c7 }
        $ror_r9d = { 41 c1 c9 0d 41 01 c1 }
    condition:
        any of them
}

rule Reflective_PE_In_Unbacked_Memory
{
    meta:
        description = "an MZ/PE image at the start of private executable memory: a reflectively loaded or manually mapped module"
        severity = "high"
    condition:
        uint16(0) == 0x5A4D and uint32(0x3C) < 0x1000 and uint32(uint32(0x3C)) == 0x00004550
}
