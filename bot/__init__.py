"""Briefing bot: a sourced briefing on the US–Russia–Ukraine peace talks."""

__version__ = "0.1.0"
