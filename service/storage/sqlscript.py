"""Run a multi-statement SQL script through Alembic.

SQLAlchemy's asyncpg dialect prepares every statement, and a prepared statement
holds exactly one command, so migration scripts are split here. Dollar-quoted
bodies (``$$ ... $$``, used by PL/pgSQL functions) are kept whole.
"""

from __future__ import annotations

import re

from alembic import op

_LINE_COMMENT = re.compile(r"--[^\n]*")


def split_statements(script: str) -> list[str]:
    """Split ``script`` on semicolons outside ``$$`` quotes; drop ``--`` comments there
    (they may hold semicolons) and empty parts."""
    statements: list[str] = []
    current: list[str] = []
    for index, chunk in enumerate(script.split("$$")):
        inside_quotes = index % 2 == 1
        if index:
            current.append("$$")
        if inside_quotes:
            current.append(chunk)
            continue
        pieces = _LINE_COMMENT.sub("", chunk).split(";")
        current.append(pieces[0])
        for piece in pieces[1:]:
            statements.append("".join(current))
            current = [piece]
    statements.append("".join(current))
    return [s.strip() for s in statements if s.strip()]


def execute_script(script: str) -> None:
    for statement in split_statements(script):
        op.execute(statement)
