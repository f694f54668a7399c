"""Operators of the HelpCrunch provider."""
