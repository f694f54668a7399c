"""What Airflow's ProvidersManager reads about this provider (entry point ``apache_airflow_provider``)."""

from __future__ import annotations

from typing import Any

from airflow_provider_helpcrunch import __version__
from airflow_provider_helpcrunch.hooks.connection import CONN_TYPE, provider_info_form

PACKAGE_NAME = "airflow-provider-helpcrunch"
HOOK_CLASS = "airflow_provider_helpcrunch.hooks.helpcrunch.HelpCrunchHook"


def get_provider_info() -> dict[str, Any]:
    """Describe this provider to Airflow: package, integration, modules and the connection type."""
    return {
        "package-name": PACKAGE_NAME,
        "name": "HelpCrunch",
        "description": "`HelpCrunch <https://helpcrunch.com/>`__ customer-support chat service.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "HelpCrunch",
                "external-doc-url": "https://docs.helpcrunch.com/en/rest-api-v1",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": "HelpCrunch",
                "python-modules": ["airflow_provider_helpcrunch.hooks.helpcrunch"],
            }
        ],
        "operators": [
            {
                "integration-name": "HelpCrunch",
                "python-modules": ["airflow_provider_helpcrunch.operators.helpcrunch"],
            }
        ],
        "sensors": [
            {
                "integration-name": "HelpCrunch",
                "python-modules": ["airflow_provider_helpcrunch.sensors.helpcrunch"],
            }
        ],
        "triggers": [
            {
                "integration-name": "HelpCrunch",
                "python-modules": ["airflow_provider_helpcrunch.triggers.helpcrunch"],
            }
        ],
        "transfers": [
            {
                "source-integration-name": "HelpCrunch",
                "target-integration-name": "Common IO",
                "python-module": "airflow_provider_helpcrunch.transfers.helpcrunch_to_object_storage",
            }
        ],
        "connection-types": [
            {
                "connection-type": CONN_TYPE,
                "hook-class-name": HOOK_CLASS,
                "hook-name": "HelpCrunch",
                **provider_info_form(),
            }
        ],
    }
