"""Triggers of the HelpCrunch provider: they run in the triggerer."""
