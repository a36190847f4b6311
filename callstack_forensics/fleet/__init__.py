"""Fleet triage: many memory images and minidumps on a Dask cluster, one Parquet case store, and the
prevalence of every stack across hosts (DuckDB).

- ``inputs``: SOURCES arguments (files, folders, globs) to files.
- ``task``: one source on a worker -> tables and a case report (never raises).
- ``cluster``/``runner``: the Dask side: a local or remote cluster, one task per source, resume.
- ``worker_server``: the local workers' fork server prepared (imports, parser, quick exit, frozen heap).
- ``store``/``tables``/``shape``/``hostname``: what is written, per source, atomically.
- ``prevalence``/``report``/``export``: reading the store: SQL, the fleet report, ECS ndjson.
- ``errors``: the errors a person can cause, each one clear message.

The package itself imports nothing: the CLI's entry point reaches ``cluster`` before it has paid
for DuckDB, pyarrow or the analysis, so the workers' fork server starts first thing in a run.
"""
