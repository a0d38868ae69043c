"""For a machine without servers: embedded Postgres and Redis from PyPI wheels, and the
demo program with its stores, cards and keys. Not used in production."""
