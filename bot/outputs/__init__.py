"""Delivery channels: the output contract, the registry and the shared network guard."""

from __future__ import annotations

from bot.outputs.base import Envelope, Message, Output, OutputContext, Receipt, Target
from bot.outputs.network import EgressAllowlist, HttpLimits, TargetPolicy
from bot.outputs.registry import infer_kind, output_class, output_classes
from bot.settings import Settings


def make_context(settings: Settings, *, limits: HttpLimits | None = None) -> OutputContext:
    """The shared context for outputs, from settings."""
    return OutputContext(
        settings=settings,
        policy=TargetPolicy(
            allow_private=settings.allow_private_targets,
            egress=EgressAllowlist.parse(settings.egress_allowlist)
            if settings.egress_allowlist
            else None,
        ),
        limits=limits or HttpLimits(),
    )


__all__ = [
    "Envelope",
    "HttpLimits",
    "Message",
    "Output",
    "OutputContext",
    "Receipt",
    "Target",
    "TargetPolicy",
    "infer_kind",
    "make_context",
    "output_class",
    "output_classes",
]
