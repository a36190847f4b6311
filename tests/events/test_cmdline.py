"""CommandLineToArgvW's splitting rules, case by case (documented Windows behaviour)."""

import pytest

from callstack_forensics.events.cmdline import args_fields, split_command_line


@pytest.mark.parametrize("line,expected", [
    ('"C:\\Program Files\\a.exe" -x "y z"', ["C:\\Program Files\\a.exe", "-x", "y z"]),
    ("C:\\Windows\\system32\\cmd.exe /c whoami", ["C:\\Windows\\system32\\cmd.exe", "/c", "whoami"]),
    ('a.exe "a b" c', ["a.exe", "a b", "c"]),
    ('a.exe a\\\\\\b', ["a.exe", "a\\\\\\b"]),                 # backslashes not before a quote are literal
    ('a.exe a\\\\\\"b', ["a.exe", 'a\\"b']),                  # 3 backslashes + quote: 1 backslash, literal quote
    ('a.exe a\\\\"b c"', ["a.exe", "a\\b c"]),                # 2 backslashes + quote: 1 backslash, quoting toggles
    ('a.exe "a""b"', ["a.exe", 'a"b']),                       # "" inside quotes is a literal quote
    ('a.exe   \t  b', ["a.exe", "b"]),
    ('"C:\\x\\"y.exe a', ['C:\\x\\y.exe', "a"]),              # the program name takes backslashes literally
    ('a.exe ""', ["a.exe", ""]),                               # an empty quoted argument is an argument
    ("a.exe ", ["a.exe"]),
])
def test_split_like_command_line_to_argv(line, expected):
    assert split_command_line(line) == expected


def test_args_fields_absent_without_a_command_line():
    assert args_fields(None) == {} and args_fields("") == {}
    assert args_fields('"c:\\a b\\p.exe" -enc AAA') == {"args": ["c:\\a b\\p.exe", "-enc", "AAA"], "args_count": 3}
