"""Transfers from HelpCrunch to other systems."""

from __future__ import annotations
