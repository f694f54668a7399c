"""Sensors of the HelpCrunch provider."""
