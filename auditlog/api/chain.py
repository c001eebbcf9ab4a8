"""``/api/v3/events/chain/``: verify the event chain and list its signed checkpoints.

A request verifies a bounded range (by default from the latest checkpoint to the head, at
most :data:`VERIFY_LIMIT` events); a full verification is ``manage.py verify_events``.
Both need the permission to view events.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from auditlog.api.pagination import single_value, whole_number
from auditlog.chain.breaches import BREACH_LABELS, Breach
from auditlog.chain.links import chain_head, sealing_backlog
from auditlog.chain.signing import checkpoint_record
from auditlog.chain.verification import verify
from auditlog.models import ChainCheckpoint, ChainRecordKind
from auditlog.reads import Read, record_read

VERIFY_LIMIT = 50_000
VIEW_EVENTS = ["auditlog.view_event"]


class ChainCheckpointSerializer(serializers.Serializer):
    """A signed record exactly as ``export_checkpoints`` writes it (the signature covers these
    values, ``created`` included, in this form)."""

    kind = serializers.ChoiceField(choices=ChainRecordKind.choices)
    sequence = serializers.IntegerField(help_text="The link this record vouches for.")
    chain_hash = serializers.CharField(help_text="That link's hash.")
    created = serializers.CharField(help_text="UTC, with microseconds.")
    first_sequence = serializers.IntegerField(allow_null=True, help_text="prune: first removed.")
    last_sequence = serializers.IntegerField(allow_null=True, help_text="prune: last removed.")
    first_prev = serializers.CharField(allow_null=True, help_text="prune: link before the range.")
    last_hash = serializers.CharField(allow_null=True, help_text="prune: last removed link.")
    count = serializers.IntegerField(allow_null=True, help_text="prune: events removed.")
    signature = serializers.CharField(help_text="HMAC-SHA256 of the other fields.")
    key_id = serializers.CharField(help_text="Which key signed (a fingerprint).")

    def to_representation(self, instance: ChainCheckpoint) -> dict[str, Any]:
        return dict(checkpoint_record(instance))


class BrokenLinkSerializer(serializers.Serializer):
    sequence = serializers.IntegerField(
        allow_null=True, help_text="Where the chain breaks; null for an event not chained."
    )
    event_pk = serializers.UUIDField(allow_null=True)
    reason = serializers.ChoiceField(choices=[(str(b), BREACH_LABELS[b]) for b in Breach])
    message = serializers.CharField()


class VerificationSerializer(serializers.Serializer):
    ok = serializers.BooleanField(help_text="No broken link in the range.")
    verified = serializers.IntegerField(help_text="Events checked.")
    unsealed = serializers.IntegerField(help_text="Events waiting to be sealed (anywhere).")
    unchained = serializers.IntegerField(
        help_text="Events neither chained nor waiting to be sealed (anywhere); any is a breach."
    )
    head = serializers.IntegerField(allow_null=True, help_text="The chain's last sequence.")
    from_sequence = serializers.IntegerField()
    to_sequence = serializers.IntegerField(allow_null=True)
    checkpoints = serializers.IntegerField(help_text="Signed checkpoints checked.")
    pruned = serializers.IntegerField(
        help_text="Events in the range removed with a signed prune record (retention, erasure)."
    )
    first_broken = BrokenLinkSerializer(allow_null=True)


class ChainStatusSerializer(serializers.Serializer):
    head = serializers.IntegerField(allow_null=True, help_text="The chain's last sequence.")
    unsealed = serializers.IntegerField(help_text="Events waiting to be sealed.")
    oldest_unsealed_created = serializers.DateTimeField(
        allow_null=True, help_text="The created time of the oldest event waiting to be sealed."
    )
    oldest_unsealed_age_seconds = serializers.FloatField(
        allow_null=True,
        help_text="How long the oldest waiting event has waited (since it was queued): a "
        "growing age means the sealer does not keep up, or does not run.",
    )


def _sequence_param(request: Request, name: str) -> int | None:
    value = whole_number(request, name)
    if value is None:
        return None
    if value < 1:
        raise ValidationError({name: ["Must be at least 1."]})
    return value


def _latest_checkpoint() -> int:
    sequence = (
        ChainCheckpoint.objects.filter(kind=ChainRecordKind.CHECKPOINT)
        .order_by("-sequence")
        .values_list("sequence", flat=True)
        .first()
    )
    return int(sequence) if sequence is not None else 1


def verification_range(request: Request) -> tuple[int, int | None]:
    """``from_sequence`` (default: the latest checkpoint) and ``to_sequence`` (default: up to
    :data:`VERIFY_LIMIT` events later); a wider explicit range is a 400."""
    first = _sequence_param(request, "from_sequence")
    last = _sequence_param(request, "to_sequence")
    first = first if first is not None else _latest_checkpoint()
    if last is None:
        head = chain_head()
        if head is None or head.sequence < first:
            return first, None
        return first, min(head.sequence, first + VERIFY_LIMIT - 1)
    if last < first:
        raise ValidationError({"to_sequence": [f"Must not be below from_sequence ({first})."]})
    if last - first + 1 > VERIFY_LIMIT:
        raise ValidationError(
            {
                "to_sequence": [
                    f"Verify at most {VERIFY_LIMIT} sequences per request; "
                    "use manage.py verify_events for the whole chain."
                ]
            }
        )
    return first, last


class EventChainViewSet(viewsets.GenericViewSet):
    """Tamper evidence of the event log (read only)."""

    queryset = ChainCheckpoint.objects.order_by("sequence", "pk")
    serializer_class = ChainCheckpointSerializer
    filter_backends: list[Any] = []
    action_permissions = {
        "verify": VIEW_EVENTS,
        "checkpoints": VIEW_EVENTS,
        "status": VIEW_EVENTS,
    }

    @extend_schema(
        summary="The chain's head and the sealer's backlog",
        description="How many events wait to be sealed and how long the oldest has waited "
        "(cheap: no verification).",
        responses=ChainStatusSerializer,
    )
    @action(detail=False, pagination_class=None)
    def status(self, request: Request) -> Response:
        backlog = sealing_backlog()
        head = chain_head()
        return Response(
            ChainStatusSerializer(
                {
                    "head": head.sequence if head is not None else None,
                    "unsealed": backlog.unsealed,
                    "oldest_unsealed_created": backlog.oldest_created,
                    "oldest_unsealed_age_seconds": backlog.age_seconds(timezone.now()),
                }
            ).data
        )

    @extend_schema(
        summary="Verify the event chain",
        description="Checks every link in a range: content hashes, links, gaps accounted for by "
        "signed prune records, and signed checkpoints; answers the first broken link. By "
        f"default from the latest checkpoint to the head (at most {VERIFY_LIMIT} sequences); "
        "`manage.py verify_events` verifies the whole chain.",
        parameters=[
            OpenApiParameter(
                "from_sequence",
                OpenApiTypes.INT,
                description="First sequence to verify (default: the latest checkpoint).",
            ),
            OpenApiParameter(
                "to_sequence",
                OpenApiTypes.INT,
                description=f"Last sequence to verify (default: the head, at most {VERIFY_LIMIT} "
                "sequences after from_sequence).",
            ),
        ],
        responses=VerificationSerializer,
    )
    @action(detail=False, pagination_class=None)
    def verify(self, request: Request) -> Response:
        first, last = verification_range(request)
        result = verify(from_sequence=first, to_sequence=last)
        answer = result.as_json()
        record_read(
            kind=Read.CHAIN_VERIFICATION,
            via="api",
            what={"from_sequence": first, "to_sequence": last},
            details={"ok": answer["ok"], "verified": answer["verified"]},
        )
        return Response(answer)

    @extend_schema(
        summary="Signed checkpoints and prune records of the event chain",
        description="Keep them outside the database (e.g. in a SIEM): `manage.py verify_events "
        "--checkpoints FILE` checks the chain against them.",
        parameters=[
            OpenApiParameter(
                "since",
                OpenApiTypes.INT,
                description="Only records for sequences after this one.",
            ),
            OpenApiParameter(
                "kind",
                OpenApiTypes.STR,
                enum=ChainRecordKind.values,
                description="Only checkpoints or only prune records.",
            ),
        ],
        responses=ChainCheckpointSerializer(many=True),
    )
    @action(detail=False)
    def checkpoints(self, request: Request) -> Response:
        queryset = self.get_queryset()
        since = whole_number(request, "since")
        if since is not None:
            queryset = queryset.filter(sequence__gt=since)
        kind = single_value(request, "kind")
        if kind is not None:
            if kind not in ChainRecordKind.values:
                raise ValidationError(
                    {"kind": [f"{kind!r} is not one of {', '.join(ChainRecordKind.values)}."]}
                )
            queryset = queryset.filter(kind=kind)
        page = self.paginate_queryset(queryset)
        serializer = self.get_serializer(page, many=True)
        return self.get_paginated_response(serializer.data)
