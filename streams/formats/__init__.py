"""The formats in which a stream writes an event.

A stream hands each format a :class:`StreamRecord` (the event as the API returns it, plus its
place in the hash chain) and gets back one line of text (no trailing newline), which the
transport frames (a JSON array of a batch, a syslog message, a line of a file).

``api`` is the event as the list API returns it; ``ecs`` is Elastic Common Schema as Elastic's
authentik integration maps it (:mod:`.ecs`); ``ocsf`` is the Open Cybersecurity Schema
Framework 1.5.0 (:mod:`.ocsf`); ``cef`` is ArcSight's Common Event Format (:mod:`.cef`).
Each carries the record's chain sequence, link hash, previous hash and previous sequence.
"""

from __future__ import annotations

from streams.formats.base import ApiFormat, Format, StreamRecord
from streams.formats.cef import CefFormat
from streams.formats.ecs import EcsFormat
from streams.formats.ocsf import OcsfFormat

__all__ = ["FORMATS", "ApiFormat", "Format", "StreamRecord", "get_format", "validate_format"]

FORMATS: dict[str, Format] = {
    format.name: format for format in (ApiFormat(), EcsFormat(), OcsfFormat(), CefFormat())
}


def get_format(name: str) -> Format:
    """The format called ``name``; ``ValueError`` naming the known ones otherwise."""
    try:
        return FORMATS[name]
    except KeyError:
        known = ", ".join(sorted(FORMATS))
        raise ValueError(f'Unknown format "{name}": use one of {known}.') from None


def validate_format(name: str) -> str:
    """``name`` when it is a known format (for a form or serializer field's validation);
    ``ValueError`` with a message naming the known ones otherwise."""
    get_format(name)
    return name
