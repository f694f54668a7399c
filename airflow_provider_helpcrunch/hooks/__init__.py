"""Hooks of the HelpCrunch provider."""
