"""A small Server-Sent Events client for the tests: reads ``id:``/``data:`` messages from a
real server over a real socket, the way a browser's EventSource does."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests


@dataclass
class Stream:
    response: requests.Response
    last_id: str | None = None
    _buffer: str = ""
    _lines: Any = None
    comments: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lines = self.response.iter_lines(chunk_size=1, decode_unicode=True)

    def events(self, count: int, timeout: float = 10.0) -> list[tuple[int, dict[str, Any]]]:
        """The next ``count`` events as (id, JSON); fails if they do not come in ``timeout``."""
        found: list[tuple[int, dict[str, Any]]] = []
        deadline = time.monotonic() + timeout
        event_id: str | None = None
        data: list[str] = []
        while len(found) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(found)} of {count} events came: {found}")
            line = next(self._lines)  # the server's keep-alive comments come every half second
            if line == "":
                if event_id is not None:
                    self.last_id = event_id
                if data:
                    found.append((int(self.last_id or 0), json.loads("\n".join(data))))
                event_id, data = None, []
            elif line.startswith(":"):
                self.comments.append(line)
            elif line.startswith("id:"):
                event_id = line[3:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        return found

    def quiet(self, seconds: float) -> list[tuple[int, dict[str, Any]]]:
        """Whatever events come within ``seconds`` (none expected, usually); the stream's
        keep-alive comments (every half second in the tests) let the wait end."""
        try:
            return self.events(1, timeout=seconds)
        except AssertionError:
            return []

    def close(self) -> None:
        self.response.close()


def open_stream(
    base_url: str, path: str, *, token: str, last_event_id: str | None = None, timeout: float = 10.0
) -> Stream:
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    url = base_url + path
    assert urlsplit(url).scheme == "http"
    response = requests.get(url, headers=headers, stream=True, timeout=(5, timeout))
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/event-stream")
    return Stream(response)
