"""
A local HelpCrunch stand-in for tests and demos: no account, no network.

.. code-block:: python

    from airflow_provider_helpcrunch.testing import HelpCrunchStandIn

    with HelpCrunchStandIn(chats=30) as api:
        os.environ["AIRFLOW_CONN_HELPCRUNCH_DEFAULT"] = api.connection_json()
        ...  # run your DAG or hook; then assert on api.chats and api.requests

Installed with the package, the pytest fixture ``helpcrunch_standin`` does the same for a test.
"""

from __future__ import annotations

from airflow_provider_helpcrunch.testing.server import (
    DEFAULT_API_KEY,
    Fault,
    HelpCrunchStandIn,
    RequestRecord,
)

__all__ = ["DEFAULT_API_KEY", "Fault", "HelpCrunchStandIn", "RequestRecord"]
