"""The fleet's input errors, gathered for the CLI: each is one clear message and exit 2."""

from __future__ import annotations

from .cluster import ClusterError
from .inputs import InputError
from .prevalence import QueryError
from .store import StoreError

FLEET_ERRORS: tuple[type[Exception], ...] = (ClusterError, InputError, QueryError, StoreError)
