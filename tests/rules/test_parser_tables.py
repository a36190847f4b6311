"""The EQL parser's tables kept in the user's cache folder: loaded when there, rebuilt when not
usable, never read from a file or folder someone else could have written."""

from __future__ import annotations

import os

from lark import Lark

from callstack_forensics.eql.parser_tables import load_parser
from callstack_forensics.user_cache import user_cache_dir

GRAMMAR = 'start: WORD\n%import common.WORD\n%ignore " "\n'
OTHER = 'start: NUMBER\n%import common.NUMBER\n%ignore " "\n'
OPTIONS = {"parser": "lalr", "lexer": "basic"}


def _cached(folder):
    return sorted(p for p in folder.iterdir() if p.suffix == ".lark")


def test_tables_are_kept_then_loaded_by_name(tmp_path):
    built = load_parser(GRAMMAR, OPTIONS, tmp_path)
    [kept] = _cached(tmp_path)
    assert built.parse("hello").children[0] == "hello"
    assert oct(kept.stat().st_mode & 0o777) == "0o600"
    # the file is what the next run uses: put another grammar's tables under the same name
    with open(kept, "wb") as handle:
        Lark(OTHER, **OPTIONS).save(handle)
    assert load_parser(GRAMMAR, OPTIONS, tmp_path).parse("42").children[0] == "42"


def test_a_changed_grammar_or_option_gets_tables_of_its_own(tmp_path):
    load_parser(GRAMMAR, OPTIONS, tmp_path)
    load_parser(OTHER, OPTIONS, tmp_path)
    load_parser(GRAMMAR, {**OPTIONS, "propagate_positions": True}, tmp_path)
    assert len(_cached(tmp_path)) == 3


def test_an_unreadable_file_is_built_again_and_replaced(tmp_path):
    load_parser(GRAMMAR, OPTIONS, tmp_path)
    [kept] = _cached(tmp_path)
    kept.write_bytes(b"not a pickle, or half of one")
    assert load_parser(GRAMMAR, OPTIONS, tmp_path).parse("again").children[0] == "again"
    with open(kept, "rb") as handle:
        assert Lark.load(handle).parse("fine").children[0] == "fine"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_file_others_could_write_is_not_loaded(tmp_path):
    load_parser(GRAMMAR, OPTIONS, tmp_path)
    [kept] = _cached(tmp_path)
    with open(kept, "wb") as handle:
        Lark(OTHER, **OPTIONS).save(handle)
    os.chmod(kept, 0o666)
    assert load_parser(GRAMMAR, OPTIONS, tmp_path).parse("word").children[0] == "word"
    assert oct(kept.stat().st_mode & 0o777) == "0o600"  # replaced by this run's own


def test_no_cache_folder_means_the_tables_are_built(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert user_cache_dir() is None
    assert load_parser(GRAMMAR, OPTIONS).parse("word").children[0] == "word"
    assert not blocker.is_dir()


def test_the_cache_folder_is_private_and_refused_when_not(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = user_cache_dir()
    assert folder == tmp_path / "callstack-forensics"
    assert folder.stat().st_mode & 0o077 == 0
    os.chmod(folder, 0o777)
    assert user_cache_dir() is None
    load_parser(GRAMMAR, OPTIONS)  # nothing is kept in a folder others could write to
    assert _cached(folder) == []
