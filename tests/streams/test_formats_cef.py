"""CEF: a header of seven fields with ``\\`` and ``|`` escaped, an extension of ``key=value``
pairs with ``\\``, ``=`` and line breaks escaped, one line per record, severity per action,
and the chain in labelled custom fields. The parser here follows the CEF specification's
escaping rules, independently of the encoder."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pytest

from directory.models import User
from streams.formats import get_format
from streams.formats.cef import action_label, escape_extension, escape_header
from tests.streams.format_samples import PUBLIC_IP, PUBLIC_IPV6, TRICKY, sample_records

pytestmark = pytest.mark.django_db

HEADER_FIELD = re.compile(r"((?:[^|\\]|\\[|\\])*)\|")
EXTENSION_PAIR = re.compile(r"([A-Za-z0-9_]+)=((?:[^\\=]|\\[\\=nr])*?)(?= [A-Za-z0-9_]+=|$)")
UNESCAPE = {"\\\\": "\\", "\\|": "|", "\\=": "=", "\\n": "\n", "\\r": "\r"}


def _unescape(text: str) -> str:
    return re.sub(r"\\[\\|=nr]", lambda m: UNESCAPE[m.group(0)], text)


def parse_cef(line: str) -> tuple[list[str], dict[str, str]]:
    """(the seven header fields after ``CEF:0``, the extension) of one CEF line, unescaped;
    AssertionError when the line is not well-formed CEF."""
    assert line.startswith("CEF:0|") and "\n" not in line and "\r" not in line
    rest = line[len("CEF:0|") :]
    header = []
    for _ in range(6):
        match = HEADER_FIELD.match(rest)
        assert match, f"header field {len(header)} is malformed in {line!r}"
        header.append(_unescape(match.group(1)))
        rest = rest[match.end() :]
    extension: dict[str, str] = {}
    position = 0
    while position < len(rest):
        match = EXTENSION_PAIR.match(rest, position)
        assert match, f"extension is malformed at {rest[position:]!r}"
        extension[match.group(1)] = _unescape(match.group(2))
        position = match.end() + 1
    return header, extension


@pytest.fixture
def samples(admin_user: User, geoip_dbs: Any) -> dict[str, Any]:
    return sample_records(admin_user)


def test_every_action_is_well_formed_cef_with_its_chain(samples: dict[str, Any]) -> None:
    cef = get_format("cef")
    for name, record in samples.items():
        header, extension = parse_cef(cef.encode(record))
        vendor, product, _version, class_id, label, severity = header
        assert (vendor, product) == ("auditlog", "auditlog-server"), name
        assert class_id == record.event["action"] and label == action_label(class_id)
        assert 0 <= int(severity) <= 10
        assert extension["externalId"] == record.event["pk"]
        assert extension["act"] == record.event["action"]
        assert (extension["cn1Label"], extension["cn1"]) == ("chainSequence", str(record.sequence))
        assert (extension["cs1Label"], extension["cs1"]) == ("chainHash", record.chain_hash)
        assert (extension["cs2Label"], extension["cs2"]) == ("chainPrevHash", record.prev_hash)
        if record.previous_sequence is None:
            assert "cn2" not in extension
        else:
            assert extension["cn2"] == str(record.previous_sequence)
            assert extension["cn2Label"] == "previousSequence"


def test_escaping_keeps_every_character_and_one_line(samples: dict[str, Any]) -> None:
    record = samples["login_failed"]
    # An action is a name, but a custom one might hold anything a header must escape.
    tricky = replace(record, event={**record.event, "action": "custom_" + TRICKY})
    header, extension = parse_cef(get_format("cef").encode(tricky))
    assert header[3] == "custom_" + TRICKY.replace("\r\n", " ").replace("\n", " ")
    header, extension = parse_cef(get_format("cef").encode(record))
    assert extension["msg"] == TRICKY
    assert extension["suser"] == "mallory"
    assert (extension["c6a2"], extension["c6a2Label"]) == (PUBLIC_IPV6, "Source IPv6 Address")
    assert "hunter2" not in extension["cs4"]


def test_escape_rules() -> None:
    assert escape_header("a|b\\c=d") == "a\\|b\\\\c=d"
    assert escape_header("line\nbreak") == "line break"
    assert escape_extension("a|b\\c=d\r\ne") == "a|b\\\\c\\=d\\r\\ne"


def test_severity_follows_the_action(samples: dict[str, Any]) -> None:
    def severity(name: str) -> int:
        return int(parse_cef(get_format("cef").encode(samples[name]))[0][5])

    assert severity("login") == 1
    assert severity("password_set") == 3
    assert severity("login_failed") == 5
    assert severity("suspicious_request") == 8
    assert severity("system_exception") == 8


def test_login_fields(samples: dict[str, Any]) -> None:
    record = samples["login"]
    _, extension = parse_cef(get_format("cef").encode(record))
    assert extension["src"] == PUBLIC_IP
    assert extension["suser"] == "admin" and extension["suid"] == str(record.event["user"]["pk"])
    assert extension["outcome"] == "success"
    assert extension["requestMethod"] == "POST"
    assert extension["request"] == "/if/flow/default-authentication-flow/"
    assert extension["requestClientApplication"].startswith("Mozilla/5.0 (X11")
    assert extension["slat"] == "51.5142"
    assert extension["cs3"] == "tests" and extension["cs3Label"] == "app"
