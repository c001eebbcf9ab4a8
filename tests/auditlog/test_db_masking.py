"""The database-side port of the redaction policy (the SQL functions the capture triggers call,
generated in ``auditlog/dbfunctions.py``) masks exactly what the Python policy
(``auditlog/sanitize.py``) masks: the same kind for every key, the same text for every value,
the same JSON for every document, checked against each other on a corpus and on generated
input."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditlog import sanitize
from auditlog.sanitize import mask_field_value, mask_string, secret_kind_number
from tests.test_secrets import LOOKALIKES, SECRET_KEYS, SECRET_LISTS, corpus, secret_value

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the triggers' SQL is PostgreSQL's"
    ),
]


def _policy_words() -> list[str]:
    lists = [
        sanitize.SECRET_SUBSTRINGS,
        sanitize.SECRET_WORDS,
        sanitize.SECRET_KEYS,
        sanitize.EXEMPT_KEYS,
        sanitize.METADATA_WORDS,
        sanitize.IDENTIFIER_WORDS,
        sanitize.SESSION_WORDS,
        sanitize.SESSION_PARTS,
        sanitize.OTP_WORDS,
        sanitize.CODE_QUALIFIERS,
        sanitize.CODE_STEMS,
        sanitize.LINK_WORDS,
        sanitize.LINK_QUALIFIERS,
        sanitize.SESSION_COOKIE_PREFIXES,
        sanitize.DESCRIBING_WORDS,
        sanitize.VALUE_KEYS,
    ]
    return sorted({word for words in lists for word in words})


def corpus_keys() -> list[str]:
    """Every word of the policy alone, in pairs joined each way, and in camel and upper case,
    with the corpus's own keys and some that look like none of them."""
    words = _policy_words()
    sample = words[::3]
    keys = set(words) | set(SECRET_KEYS) | set(LOOKALIKES) | set(SECRET_LISTS)
    for first, second in itertools.product(sample, ["code", "codes", "id", "link", "session"]):
        keys.add(f"{first}_{second}")
        keys.add(f"{second}_{first}")
    for first, second in itertools.product(sample[:20], sample[20:40]):
        keys.add(f"{first}_{second}")
        keys.add(f"{first}-{second}".upper())
        keys.add(first + second.capitalize())
    keys |= {
        "HTTPCookie",
        "XMLHttpRequest",
        "ABcDEf",
        "sess0123456789abcdef0123456789abcdef",
        "SSESS0123456789abcdef0123456789abcdef",
        "wordpress_sec_abc",
        "x-session-token",
        "beaker.session.id",
        "express:sess",
        "twoFactorCode",
        "one_time_code",
        "2fa-code",
        "",
        "_",
        "123",
        "Ünïcode_key",
        "country_code",
        "status_code",
        "userName",
        "theme",
    }
    return sorted(keys)


def sql_kinds(keys: list[str]) -> dict[str, int | None]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT k, auditlog_secret_kind(k) FROM unnest(%s::text[]) AS k",
            [keys],
        )
        return dict(cursor.fetchall())


def sql_mask_text(values: list[str]) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT auditlog_mask_text(v) FROM unnest(%s::text[]) WITH ORDINALITY AS t(v, i) "
            "ORDER BY i",
            [values],
        )
        return [row[0] for row in cursor.fetchall()]


def sql_mask_json(value: Any, kind: int | None = None, depth: int = 1) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT auditlog_mask_json(%s::jsonb, %s::smallint, %s)::text",
            [json.dumps(value), kind, depth],
        )
        return json.loads(cursor.fetchone()[0])


def test_every_key_of_the_corpus_has_the_same_kind_in_sql() -> None:
    keys = corpus_keys()
    assert len(keys) > 600
    expected = {key: secret_kind_number(key) for key in keys}
    # The corpus reaches every kind, so a port that called everything secret would fail.
    assert {None, 1, 2} <= set(expected.values())
    got = sql_kinds(keys)
    differing = {key: (expected[key], got[key]) for key in keys if expected[key] != got[key]}
    assert not differing, f"(python, sql) kinds differ: {differing}"


KEY_TEXT = st.text(
    alphabet=st.sampled_from("abcdefgsiokenpwdASIDKEYTOPC_-.:0123456789"), max_size=24
) | st.builds(
    lambda parts, sep: sep.join(parts),
    st.lists(st.sampled_from(_policy_words()), min_size=1, max_size=3),
    st.sampled_from(["_", "-", ".", "", " "]),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(keys=st.lists(KEY_TEXT, min_size=1, max_size=20))
def test_generated_keys_have_the_same_kind_in_sql(keys: list[str]) -> None:
    got = sql_kinds(keys)
    for key in keys:
        assert got[key] == secret_kind_number(key), key


TEXTS = [
    "short",
    "Bearer CorpusBearerToken001xyz and more",
    "Authorization: Basic dXNlcjpwYXNzd29yZA==",
    "postgres://app:CorpusUrlPassword001@db.example.com/app",
    "see https://user:pw12345@example.com/x and ftp://a:b@c",
    "pbkdf2_sha256$870000$corpussalt$Q29ycHVzSGFzaFZhbHVlMDAx",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjb3JwdXMtand0LTAwMSJ9.c29tZXNpZ25hdHVyZQ",
    "-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----",
    "AKIACORPUS0000000001",
    "ghp_" + "a" * 36,
    "xoxb-1234567890-abcdef",
    "/verify/?otp=123456&connect.sid=s%3Aabc&next=/home",
    "sessionid=abcdef123456; theme=dark; PHPSESSID=zzz; path=/",
    "a=1&token=secret-value&b=2#frag=3&password=x",
    "cookie: a=b; c=d;e=f",
    "name=Ana ; token=abc;def",
    "?=x&&token=&=y&api_key=k1 api_key=k2\ttoken=t3",
    "x==y&secret==z",
    "a=1;b",
    "user@example.com wrote: key = value",
    "no secrets here at all, just a sentence",
    "reset_link=https://example.com/r/abc&ok=1",
]


def test_text_values_are_masked_as_python_masks_them() -> None:
    values = [*TEXTS, *(secret_value(key) for key in SECRET_KEYS)]
    expected = [mask_string(value) for value in values]
    assert expected != values  # the corpus exercises the masks
    assert sql_mask_text(values) == expected


QUERYISH = st.lists(
    st.tuples(
        st.sampled_from(["", "?", "&", "; ", " ", "#", ";"]),
        KEY_TEXT,
        st.sampled_from(["=", "=="]),
        st.text(alphabet=st.sampled_from("abc123;&= #?.:/@"), max_size=10),
    ),
    max_size=6,
).map(lambda parts: "".join(a + b + c + d for a, b, c, d in parts))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(
        QUERYISH | st.text(max_size=40).map(lambda text: text.replace("\x00", "")), max_size=10
    )
)
def test_generated_texts_are_masked_as_python_masks_them(values: list[str]) -> None:
    assert sql_mask_text(values) == [mask_string(value) for value in values]


def test_the_secrets_corpus_as_json_is_masked_as_python_masks_it() -> None:
    data = corpus()
    for kind_key in (None, "password", "session", "credentials"):
        kind = None if kind_key is None else secret_kind_number(kind_key)
        python = mask_field_value(kind_key or "attributes", data)
        assert sql_mask_json(data, kind) == python
    # And as an event stores it: the whole context through the policy once more.
    assert sql_mask_json(data) == sanitize.sanitize(data)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.text(max_size=20).map(lambda text: text.replace("\x00", ""))
    | QUERYISH,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(KEY_TEXT.map(lambda key: key.replace("\x00", "")), children, max_size=4)
    ),
    max_leaves=25,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=JSON_VALUES, field=st.sampled_from(["attributes", "password", "session", "key"]))
def test_generated_json_is_masked_as_python_masks_it(value: Any, field: str) -> None:
    assert sql_mask_json(value, secret_kind_number(field)) == mask_field_value(field, value)


def test_deep_values_are_cut_where_python_cuts_them() -> None:
    deep: Any = "bottom"
    for index in range(40):
        deep = {"level": deep} if index % 2 else [deep, index]
    # Where the event holds a field's value decides the cut: a diff's three levels down, a
    # deleted row's state two (the triggers pass that depth).
    in_diff = sanitize.sanitize({"diff": {"attributes": {"new_value": deep}}})
    in_state = sanitize.sanitize({"model_state": {"attributes": deep}})
    assert sql_mask_json(deep, None, 3) == in_diff["diff"]["attributes"]["new_value"]
    assert sql_mask_json(deep, None, 2) == in_state["model_state"]["attributes"]
    assert sql_mask_json(deep, None, 1) == mask_field_value("attributes", deep)
    assert "\\u2026" in json.dumps(in_diff)  # the cut is reached
