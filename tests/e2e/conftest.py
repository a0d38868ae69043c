"""End-to-end: HTTP through the real app; fixtures live in ``tests/conftest.py``."""
