"""Digest composition (state → Digest) and rendering (Digest → text)."""

from bot.digest.compose import ReaderOptions, Window, compose
from bot.digest.model import Digest
from bot.digest.render import FORMATS, DigestRenderer

__all__ = ["FORMATS", "Digest", "DigestRenderer", "ReaderOptions", "Window", "compose"]
