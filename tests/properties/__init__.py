"""Property tests (hypothesis) on the engine's parsers with random and mutated input, in `make test`.

Each property says what the module documents: a result, or the module's own error type, in
bounded time. The budget is small (``common.PROPERTY``) so the suite stays well under a minute.
"""
