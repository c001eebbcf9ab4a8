"""The API's JSON renderer: DRF's output, written by orjson.

Rendering is a large share of a list request (a page of events is mostly nested JSON), and
orjson writes the same document several times faster than the standard library. Anything
orjson does not know natively (lazy translations, Decimal, ...) goes through DRF's own
encoder, so the output is the same; a request for indented JSON keeps DRF's renderer.

Stored JSON may come as :class:`orjson.Fragment` (a page of events embeds its JSON columns as
stored, see ``auditlog.representation.rows_json``): orjson copies it verbatim; for indented
JSON the document is first written by orjson and read back, since the standard library's
encoder cannot embed a fragment.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

import orjson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

_fallback = JSONEncoder().default
_OPTIONS = orjson.OPT_NON_STR_KEYS


class FastJSONRenderer(JSONRenderer):
    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        if data is None:
            return b""
        if self.get_indent(accepted_media_type or "", renderer_context or {}):
            # Where orjson cannot write it, nothing was embedded: DRF's encoder writes it as it is.
            with contextlib.suppress(TypeError):
                data = json.loads(orjson.dumps(data, default=_fallback, option=_OPTIONS))
            return super().render(data, accepted_media_type, renderer_context)
        try:
            return orjson.dumps(data, default=_fallback, option=_OPTIONS)
        except TypeError:
            # Something only the standard encoder handles (an integer beyond 64 bits, ...).
            return super().render(data, accepted_media_type, renderer_context)
