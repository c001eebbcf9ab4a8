"""``manage.py streams list|pause|resume|replay``: what each does to the destination."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from streams.models import Destination, Transport
from tests.streams.conftest import deliver_all, make_destination

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = StringIO()
    call_command("streams", *args, stdout=out)
    return out.getvalue()


def test_list_pause_resume_and_replay(make_events, tmp_path) -> None:
    make_events(3)
    destination = make_destination(transport=Transport.FILE, path=str(tmp_path / "c.jsonl"))
    deliver_all(destination)
    listed = _run("list")
    assert listed.startswith("siem\tfile\tapi\trunning\tposition 3/3\tlag 0 events")
    assert _run("pause", "siem") == "siem: paused\n"
    assert Destination.objects.get(name="siem").paused
    assert "\tpaused\t" in _run("list")
    assert _run("resume", "siem") == "siem: resumed\n"
    assert not Destination.objects.get(name="siem").paused
    assert _run("replay", "siem", "--from-position", "2") == "siem: replays from position 2\n"
    assert Destination.objects.get(name="siem").position == 1
    _run("replay", "siem", "--from-time", "2000-01-01T00:00:00Z")
    assert Destination.objects.get(name="siem").position == 0


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("pause", "nope"), "No stream destination named 'nope' (known: siem)"),
        (("pause",), "needs the destination's NAME"),
        (("replay", "siem"), "Give exactly one of --from-time and --from-position"),
        (("replay", "siem", "--from-position", "x"), "--from-position must be"),
        (("replay", "siem", "--from-time", "soon"), "--from-time must be an ISO 8601 time"),
    ],
)
def test_bad_arguments_change_nothing(args: tuple[str, ...], words: str) -> None:
    make_destination(transport=Transport.FILE)
    with pytest.raises(CommandError, match=words.replace("(", r"\(").replace(")", r"\)")):
        _run(*args)
    destination = Destination.objects.get(name="siem")
    assert not destination.paused and destination.position == 0
