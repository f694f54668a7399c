"""Apache Airflow provider for HelpCrunch, the customer-support chat service."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

DEFAULT_BASE_URL = "https://api.helpcrunch.com/v1"

# Connection form fields stored in the connection's ``extra``; the hook reads them, the form shows them.
# name -> (label, description, default, minimum)
CONNECTION_EXTRA_FIELDS: dict[str, tuple[str, str, int, int]] = {
    "requests_per_minute": (
        "Requests per minute",
        "The account's API limit. Keep it at 120 unless HelpCrunch raised it for you.",
        120,
        1,
    ),
    "timeout": ("Timeout (seconds)", "Seconds to wait to connect and for each response.", 30, 1),
    "max_retries": (
        "Max retries",
        "Retries after a 5xx, a timeout or a dropped connection (0: none); 429s are waited out instead.",
        5,
        0,
    ),
}


def get_provider_info() -> dict[str, Any]:
    """Describe this provider to Airflow's ProvidersManager (entry point ``apache_airflow_provider``)."""
    return {
        "package-name": "airflow-provider-helpcrunch",
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
        "connection-types": [
            {
                "connection-type": "helpcrunch",
                "hook-class-name": "airflow_provider_helpcrunch.hooks.helpcrunch.HelpCrunchHook",
                "hook-name": "HelpCrunch",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "login", "port", "extra"],
                    "relabeling": {"host": "API base URL", "password": "API key"},
                    "placeholders": {"host": DEFAULT_BASE_URL, "password": "HelpCrunch public API key"},
                },
                "conn-fields": {
                    name: {
                        "label": label,
                        "description": description,
                        "schema": {"type": ["integer", "null"], "minimum": minimum, "default": default},
                    }
                    for name, (label, description, default, minimum) in CONNECTION_EXTRA_FIELDS.items()
                },
            }
        ],
    }
