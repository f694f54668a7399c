"""Apache Airflow provider for HelpCrunch, the customer-support chat service."""

from __future__ import annotations

__version__ = "0.1.0"
