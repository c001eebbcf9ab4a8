"""The format registry: every format is found by name, writes one line per record with the
chain in it, and an unknown name is refused with the known ones."""

from __future__ import annotations

import json
from typing import Any

import pytest

from directory.models import User
from streams.formats import FORMATS, get_format, validate_format
from tests.streams.format_samples import sample_records

pytestmark = pytest.mark.django_db


def test_the_registry_names_every_format() -> None:
    assert set(FORMATS) == {"api", "ecs", "ocsf", "cef"}
    for name, format in FORMATS.items():
        assert format.name == name and format.label and format.content_type
        assert get_format(name) is format
        assert validate_format(name) == name


def test_an_unknown_format_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r'Unknown format "leef": use one of api, cef, ecs, ocsf'):
        get_format("leef")
    with pytest.raises(ValueError, match="Unknown format"):
        validate_format("")


def test_every_format_writes_one_line_with_the_chain(admin_user: User) -> None:
    samples: dict[str, Any] = sample_records(admin_user)
    for record in samples.values():
        for format in FORMATS.values():
            line = format.encode(record)
            assert "\n" not in line and "\r" not in line, format.name
            assert record.chain_hash in line and record.prev_hash in line, format.name
            assert str(record.sequence) in line, format.name


def test_the_api_format_is_the_api_json_plus_the_chain(admin_user: User) -> None:
    record = sample_records(admin_user)["login_failed"]
    document = json.loads(get_format("api").encode(record))
    chain = document.pop("chain")
    assert document == record.event
    assert chain == {
        "sequence": record.sequence,
        "hash": record.chain_hash,
        "prev_hash": record.prev_hash,
        "previous_sequence": record.previous_sequence,
    }
    assert record.previous_sequence is not None
