"""Fleet triage: many memory images and minidumps on a Dask cluster, one Parquet case store, and the
prevalence of every stack across hosts (DuckDB).

- ``inputs``: SOURCES arguments (files, folders, globs) to files.
- ``task``: one source on a worker -> tables and a case report (never raises).
- ``cluster``/``runner``: the Dask side: a local or remote cluster, one task per source, resume.
- ``store``/``tables``/``shape``/``hostname``: what is written, per source, atomically.
- ``prevalence``/``report``/``export``: reading the store: SQL, the fleet report, ECS ndjson.
"""

from .cluster import ClusterError
from .inputs import InputError
from .prevalence import QueryError
from .store import StoreError

FLEET_ERRORS: tuple[type[Exception], ...] = (ClusterError, InputError, QueryError, StoreError)

__all__ = ["FLEET_ERRORS"]
