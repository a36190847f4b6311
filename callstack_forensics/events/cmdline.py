"""``process.args``: a command line split the way Windows splits it (``CommandLineToArgvW``).

Elastic fills ``process.args`` from the same call, so rules written against it (``process.args :
"-enc"``, ``process.args_count == 1``) must see the same pieces. Windows' rules, which differ from
a shell's:

- The first argument (the program name) ends at the first space or tab outside quotes; quotes
  only toggle, and backslashes are plain characters in it.
- In later arguments, ``2n`` backslashes before a quote are ``n`` backslashes and the quote
  toggles quoting; ``2n+1`` backslashes before a quote are ``n`` backslashes and a literal quote;
  backslashes not before a quote are literal.
- Inside quotes, ``""`` is a literal quote and quoting goes on (the behaviour of the msvcrt and
  shell32 parsers since Visual C++ 2008).
- An empty command line gives no arguments here (Windows would return the program's path, which
  the command line does not hold).
"""

from __future__ import annotations

WHITESPACE = " \t"


def split_command_line(text: str) -> list[str]:
    """The arguments ``CommandLineToArgvW`` gives for ``text``."""
    if not text:
        return []
    first, position = _program_name(text)
    args = [first]
    while True:
        while position < len(text) and text[position] in WHITESPACE:
            position += 1
        if position >= len(text):
            return args
        arg, position = _argument(text, position)
        args.append(arg)


def _program_name(text: str) -> tuple[str, int]:
    out: list[str] = []
    quoted = False
    position = 0
    while position < len(text):
        ch = text[position]
        if ch == '"':
            quoted = not quoted
        elif ch in WHITESPACE and not quoted:
            break
        else:
            out.append(ch)
        position += 1
    return "".join(out), position


def _argument(text: str, position: int) -> tuple[str, int]:
    out: list[str] = []
    quoted = False
    while position < len(text):
        ch = text[position]
        if ch == "\\":
            run = position
            while run < len(text) and text[run] == "\\":
                run += 1
            count = run - position
            if run < len(text) and text[run] == '"':
                out.append("\\" * (count // 2))
                if count % 2:
                    out.append('"')
                    run += 1
            else:
                out.append("\\" * count)
            position = run
            continue
        if ch == '"':
            if quoted and position + 1 < len(text) and text[position + 1] == '"':
                out.append('"')
                position += 2
                continue
            quoted = not quoted
            position += 1
            continue
        if ch in WHITESPACE and not quoted:
            break
        out.append(ch)
        position += 1
    return "".join(out), position


def args_fields(command_line: str | None) -> dict[str, object]:
    """``args`` and ``args_count`` for a command line the image holds; nothing when it holds none."""
    if not command_line:
        return {}
    args = split_command_line(command_line)
    return {"args": args, "args_count": len(args)} if args else {}
