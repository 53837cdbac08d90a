"""The worker tests share ``tests/test_worker.py``'s outputs context (private targets
allowed, timeouts generous for a busy machine)."""

from tests.test_worker import ctx  # noqa: F401
