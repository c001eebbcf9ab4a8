"""A bad setting fails at start-up with a message that names the variable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("EVENT_RETENTION", "24d", "EVENT_RETENTION: 24d is not in the correct format"),
        ("DEBUG", "maybe", "DEBUG: 'maybe' is not a boolean"),
        ("DB_CONN_MAX_AGE", "soon", "DB_CONN_MAX_AGE: 'soon' is not a whole number."),
        ("API_MAX_PAGE_SIZE", "0", "API_MAX_PAGE_SIZE: 0 is below the minimum of 1."),
        ("DATABASE_URL", "nonsense://x", "DATABASE_URL: Scheme 'nonsense://' is unknown."),
        ("AUDIT_CHAIN_KEY", "short", "AUDIT_CHAIN_KEY: use at least 32 characters"),
        ("AUDIT_CHAIN_CHECKPOINT_EVENTS", "0", "AUDIT_CHAIN_CHECKPOINT_EVENTS: 0 is below"),
        ("AUDIT_CHAIN_CHECKPOINT_INTERVAL", "1h", "AUDIT_CHAIN_CHECKPOINT_INTERVAL: 1h is not"),
        ("AUDIT_CHAIN_BACKDATE_BOUND", "minutes=-5", "AUDIT_CHAIN_BACKDATE_BOUND: minutes=-5 must"),
    ],
)
def test_a_bad_value_fails_loudly_naming_the_variable(
    variable: str, value: str, message: str
) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "DATA_DIR": str(REPO / "var"), variable: value},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert message in result.stderr


def test_the_env_example_lists_every_variable_the_settings_read() -> None:
    import re

    read = set(
        re.findall(r'env_\w+\(\s*"([A-Z_]+)"', (REPO / "project" / "settings.py").read_text())
    )
    listed = set(re.findall(r"^#?\s*([A-Z_]+)=", (REPO / ".env.example").read_text(), re.MULTILINE))
    assert read, "no variables found"
    assert read <= listed, f"missing from .env.example: {sorted(read - listed)}"
