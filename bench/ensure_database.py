"""Create the PostgreSQL database named in DATABASE_URL if it does not exist (for make load).

.venv/bin/python bench/ensure_database.py
"""

from __future__ import annotations

import os
import sys

import psycopg
from psycopg import sql


def main() -> None:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("DATABASE_URL must be postgres://... here.")
    base, name = url.split("?", 1)[0].rsplit("/", 1)
    try:
        with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
            exists = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [name]
            ).fetchone()
            if not exists:
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                print(f"Created database {name}.")
    except psycopg.Error as exc:
        sys.exit(f"Cannot reach PostgreSQL at {base}: {str(exc).strip().splitlines()[0]}")


if __name__ == "__main__":
    main()
