"""The fleet's parts one by one: stack shapes, host names, the inputs, the store, SQL on an empty store."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from callstack_forensics.engine.stack import FoundBy, Frame, ModuleRef
from callstack_forensics.fleet.hostname import environment, name_from_file
from callstack_forensics.fleet.inputs import InputError, expand
from callstack_forensics.fleet.prevalence import QueryError, open_store, query, rare_stacks
from callstack_forensics.fleet.shape import frame_label, label_of, stack_shape
from callstack_forensics.fleet.store import CaseStore, FileStamp
from callstack_forensics.fleet.tables import SCHEMAS, TABLES


@pytest.mark.parametrize("symbol_info, module, label", [
    (r"c:\windows\system32\ntdll.dll!NtWaitForSingleObject+0x14", "ntdll.dll", "ntdll.dll!NtWaitForSingleObject"),
    (r"c:\windows\system32\ntdll.dll!NtWaitForSingleObject", "ntdll.dll", "ntdll.dll!NtWaitForSingleObject"),
    (r"c:\program files\app\Foo.DLL+0x1A2B", "Foo.DLL", "foo.dll+0x1a2b"),  # no function: the offset is all there is
    (r"\device\harddiskvolume3\data\blob.bin+0x40", None, "blob.bin+0x40"),
    ("Unbacked", None, "Unbacked"),
    ("Unknown", None, "Unknown"),
])
def test_a_frame_label_keeps_what_two_hosts_share(symbol_info, module, label):
    assert label_of(symbol_info, module) == label


def test_a_shape_is_the_labels_innermost_first_whatever_the_load_address():
    def frame(index, address, base):
        return Frame(index, address, FoundBy.UNWOUND, symbol_info=rf"c:\w\ntdll.dll!NtDelayExecution+{address - base:#x}",
                     module=ModuleRef("ntdll.dll", r"c:\w\ntdll.dll", base))
    here = [frame(0, 0x7FF800001014, 0x7FF800000000)]
    there = [frame(0, 0x7FFA00001014, 0x7FFA00000000)]
    assert stack_shape(map(frame_label, here)) == stack_shape(map(frame_label, there)) == "ntdll.dll!NtDelayExecution"


def test_environment_block_parsing():
    block = "=C:=C:\\\0COMPUTERNAME=WS-7\0Path=C:\\x\0\0garbage=1\0".encode("utf-16-le")
    assert environment(block) == {"COMPUTERNAME": "WS-7", "PATH": "C:\\x"}  # per-drive "=C:" skipped, stops at the end
    assert name_from_file(Path("/cases/WS-0042.mem.gz")) == "WS-0042"
    assert name_from_file(Path("notepad.dmp")) == "notepad"


def test_inputs_files_folders_globs_and_what_names_nothing(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one.raw").write_bytes(b"x")
    (tmp_path / "a" / "crash").write_bytes(b"MDMP" + b"\0" * 60)  # no extension, a minidump's signature
    (tmp_path / "a" / "notes.txt").write_text("not a capture")
    (tmp_path / "a" / "symbols").mkdir()
    (tmp_path / "a" / "symbols" / "x.json.xz").write_bytes(b"\xfd7zXZ")
    (tmp_path / "b.vmem").write_bytes(b"y")
    found = expand([str(tmp_path / "a"), str(tmp_path / "*.vmem"), str(tmp_path / "a" / "one.raw")])
    assert [p.name for p in found.files] == ["crash", "one.raw", "b.vmem"]  # each once
    assert found.ignored == 2
    for argument, why in ((str(tmp_path / "none.raw"), "no such file"), (str(tmp_path / "*.lime"), "matches no file")):
        with pytest.raises(InputError, match=why):
            expand([argument])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no memory image or minidump"):
        expand([str(tmp_path / "empty")])


def row(path: str, sha: str, status: str = "done") -> dict:
    return {"sha256": sha, "host": "H", "path": path, "size": 1, "mtime_ns": 2, "status": status}


def tables_bytes() -> dict[str, bytes]:
    from callstack_forensics.fleet.store import parquet_bytes

    return {name: parquet_bytes(SCHEMAS[name].empty_table()) for name in TABLES}


def test_a_source_lands_whole_and_once_and_a_later_success_clears_its_failure(tmp_path):
    store = CaseStore(tmp_path / "case")
    store.create()
    sha = "ab" * 32
    store.write_failure({**row("/x/a.raw", None, "failed"), "error": "timed out"})
    assert [r["status"] for r in store.source_rows()] == ["failed"]
    assert store.write_source(row("/x/a.raw", sha), tables_bytes(), "<html></html>")
    assert not store.write_source(row("/y/copy.raw", sha), tables_bytes(), None)  # the same SHA-256 again
    assert store.done() == {sha}
    assert sorted(p.name for p in store.source_dir(sha).iterdir()) == sorted(f"{t}.parquet" for t in (*TABLES, "source"))
    assert [r["status"] for r in store.source_rows()] == ["done"]
    assert store.stamps() == {FileStamp("/x/a.raw", 1, 2): sha}
    assert store.report_path(sha).read_text() == "<html></html>"
    assert not list((tmp_path / "case" / ".staging").iterdir())
    assert pq.read_table(store.source_dir(sha) / "frames.parquet").schema.names[:2] == ["sha256", "host"]


def test_sql_on_an_empty_store_answers_with_no_rows_and_bad_sql_is_a_query_error(tmp_path):
    store = CaseStore(tmp_path / "case")
    store.create()
    con = open_store(store)
    for table in (*TABLES, "sources", "stack_prevalence", "process_stack_prevalence"):
        assert query(con, f"SELECT * FROM {table}").rows == []
    assert rare_stacks(con) == []
    with pytest.raises(QueryError, match="syntax error"):
        query(con, "SELEC 1")
    with pytest.raises(QueryError, match="nope"):
        query(con, "SELECT * FROM nope")


def test_the_case_folder_must_be_makeable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    from callstack_forensics.fleet.store import StoreError

    with pytest.raises(StoreError, match="cannot make the case folders"):
        CaseStore(blocker / "case").create()
    assert os.path.exists(blocker)


def test_a_source_gone_before_it_is_submitted_is_failed_with_the_reason(tmp_path):
    from callstack_forensics.fleet.runner import _plan

    present = tmp_path / "b.raw"
    present.write_bytes(b"12")
    big = tmp_path / "a.raw"
    big.write_bytes(b"1234")
    todo, result, gone = _plan([tmp_path / "vanished.raw", present, big], {FileStamp.of(present): "x"})
    assert [s.path for s in todo] == [str(big.resolve())] and result.already == 1
    assert [(g.status, g.error) for g in gone] == [("failed", "cannot read: No such file or directory")]
