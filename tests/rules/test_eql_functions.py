"""Every function of the dialect, with its ``~`` variant where it has one."""

import pytest

from callstack_forensics.eql import EqlSyntaxError, compile_query

from .helpers import event, where

EV = event(
    process__name="PowerShell.exe",
    process__command_line="powershell.exe -enc SQBFAFgA",
    process__pid=4242,
    summary="ntdll.dll|kernelbase.dll|Unbacked",
    ip4="10.1.2.3",
    ip6="2001:db8::8a2e:370:7334",
    names=["alpha.dll", "Beta.dll"],
    num_text="0x1f",
)


def test_startswith_and_tilde():
    assert where('startswith(summary, "ntdll.dll|")', EV)
    assert not where('startswith(summary, "NTDLL")', EV)
    assert where('startswith~(summary, "NTDLL")', EV)


def test_endswith_and_tilde():
    assert where('endswith(summary, "|Unbacked")', EV)
    assert not where('endswith(summary, "|unbacked")', EV)
    assert where('endswith~(summary, "|UNBACKED")', EV)


def test_stringcontains_and_tilde():
    assert where('stringcontains(process.command_line, "-enc")', EV)
    assert not where('stringcontains(process.command_line, "-ENC")', EV)
    assert where('stringcontains~(process.command_line, "-ENC")', EV)


def test_function_names_are_case_insensitive():
    assert where('stringContains(process.command_line, "-enc") and startsWith(summary, "ntdll")', EV)


def test_length():
    assert where("length(process.name) == 14", EV)
    assert where("length(names) == 2", EV)
    assert where("length(missing) == null", EV)


def test_substring():
    assert where('substring(process.name, 0, 5) == "Power"', EV)
    assert where('substring(process.name, -4) == ".exe"', EV)


def test_concat():
    assert where('concat(process.name, ":", process.pid) == "PowerShell.exe:4242"', EV)
    assert where("concat(process.name, missing) == null", EV)
    assert where('startswith~(summary, concat("ntdll.dll|", "KERNELBASE"))', EV)


def test_indexof_and_tilde():
    assert where('indexOf(summary, "|") == 9', EV)
    assert where('indexOf(summary, "|", 10) == 24', EV)
    assert where('indexOf(summary, "UNBACKED") == null', EV)
    assert where('indexOf~(summary, "UNBACKED") == 25', EV)


def test_between_and_tilde():
    assert where('between(summary, "ntdll.dll|", "|") == "kernelbase.dll"', EV)
    assert where('between~(summary, "NTDLL.DLL|", "|UNBACKED") == "kernelbase.dll"', EV)
    assert where('between(summary, "x", "y") == ""', EV)


def test_number_and_string():
    assert where("number(num_text) == 31", EV)
    assert where('number("12") + 1 == 13', EV)
    assert where('number("ff", 16) == 255', EV)
    assert where('number("nope") == null', EV)
    assert where('string(process.pid) == "4242"', EV)


def test_add_subtract_multiply_divide_modulo():
    assert where("add(process.pid, 8) == 4250 and subtract(process.pid, 42) == 4200", EV)
    assert where("multiply(3, 4) == 12 and divide(7, 2) == 3 and modulo(7, 2) == 1", EV)
    assert where("divide(-7, 2) == -3", EV)  # truncates toward zero


def test_wildcard_function_and_tilde():
    assert where('wildcard(process.name, "Power*", "x")', EV)
    assert not where('wildcard(process.name, "power*")', EV)
    assert where('wildcard~(process.name, "power*")', EV)


def test_cidrmatch_ipv4():
    assert where('cidrmatch(ip4, "10.0.0.0/8")', EV)
    assert where('cidrmatch(ip4, "192.168.0.0/16", "10.1.2.0/24")', EV)
    assert not where('cidrmatch(ip4, "192.168.0.0/16")', EV)


def test_cidrmatch_ipv6():
    assert where('cidrmatch(ip6, "2001:db8::/32")', EV)
    assert not where('cidrmatch(ip6, "fe80::/10")', EV)
    assert not where('cidrmatch(ip4, "::/0")', EV)  # families never mix


def test_cidrmatch_rejects_a_bad_block_at_compile_time():
    with pytest.raises(EqlSyntaxError) as err:
        compile_query('any where cidrmatch(ip4, "10.0.0.0/99")')
    assert err.value.column == 26


def test_predicates_on_multi_valued_fields_hold_for_any_element():
    assert where('endswith~(names, "BETA.DLL")', EV)
    assert not where('endswith(names, "gamma.dll")', EV)


def test_value_functions_map_over_multi_valued_fields():
    assert where('substring(names, 0, 4) == "Beta"', EV)


def test_null_arguments():
    assert not where('startswith(missing, "a")', EV)
    assert where('not startswith(missing, "a")', EV)


@pytest.mark.parametrize(
    "query,fragment",
    [
        ("any where nosuch(x)", "unknown function"),
        ("any where length(a, b)", "takes 1 argument"),
        ("any where length~(a)", "no case-insensitive"),
        ('any where startswith(a)', "takes 2 arguments"),
        ("any where process.name(a)", "cannot be called"),
    ],
)
def test_function_errors(query, fragment):
    with pytest.raises(EqlSyntaxError) as err:
        compile_query(query)
    assert fragment in err.value.message
    assert err.value.column == 11
