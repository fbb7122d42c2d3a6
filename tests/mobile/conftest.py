"""The symbol resolver fixtures of tests/symbols, shared: an in-memory object store (``blobs``)
and a worker that drains the queue through a resolver reading it (``process``)."""

from tests.symbols.test_resolver import blobs, process  # noqa: F401 (fixtures, registered by import)
