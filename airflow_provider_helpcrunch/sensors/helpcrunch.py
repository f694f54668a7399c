"""A sensor that waits for a HelpCrunch search to find chats: on the worker, or deferred to the triggerer."""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseSensorOperator, PokeReturnValue, conf

from airflow_provider_helpcrunch.client.checks import check_bool
from airflow_provider_helpcrunch.exceptions import HelpCrunchError
from airflow_provider_helpcrunch.hooks.connection import DEFAULT_CONN_ID
from airflow_provider_helpcrunch.hooks.helpcrunch import HelpCrunchHook
from airflow_provider_helpcrunch.triggers.helpcrunch import HelpCrunchSearchTrigger
from airflow_provider_helpcrunch.triggers.polling import check_chat_counts, check_poll_interval, filter_rows

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.providers.common.compat.sdk import Context

#: the most chat IDs the sensor reads and pushes, unless ``max_chats`` says otherwise.
DEFAULT_MAX_CHATS = 10_000


class HelpCrunchSearchChatsSensor(BaseSensorOperator):
    """
    Wait until a HelpCrunch search finds at least ``min_chats`` chats; then succeed and push their IDs.

    Like ``SqlSensor`` or ``S3KeySensor``: each poke is one search (``POST /chats/search``, every page of
    it, paced under the account's limit); its output feeds any write operator (``chat_ids=sensor.output``).
    With ``deferrable=True`` (default: Airflow's ``[operators] default_deferrable``) the sensor searches
    once on the worker, then frees its slot and waits in the triggerer, which searches every
    ``poke_interval`` without blocking (:class:`~.triggers.helpcrunch.HelpCrunchSearchTrigger`); ``timeout``
    bounds the wait either way.

    Returns (XCom ``return_value``): the IDs of the chats found, at most ``max_chats``.

    :param filters: search filters, as :class:`HelpCrunchSearchChatsOperator` takes them (templated); every
        one must match.
    :param min_chats: how many chats must match (templated rendering must give an int).
    :param max_chats: the most chats read and pushed (default 10,000).
    :param helpcrunch_conn_id: the Airflow connection with the HelpCrunch API key.
    :param requests_per_minute: this sensor's pace (default: the connection's).
    :param redis_conn_id: share the account's request budget through this Redis connection (default: the
        connection's).
    :param poke_interval: seconds between two searches (default 60, at least 15).
    :param deferrable: wait in the triggerer instead of holding a worker slot.
    """

    template_fields: Sequence[str] = ("filters",)
    ui_color = "#d9e8ff"
    ui_fgcolor = "#0b2a5b"

    def __init__(
        self,
        *,
        filters: Any = None,
        min_chats: int = 1,
        max_chats: int | None = DEFAULT_MAX_CHATS,
        helpcrunch_conn_id: str = DEFAULT_CONN_ID,
        requests_per_minute: int | None = None,
        redis_conn_id: str | None = None,
        poke_interval: float = 60.0,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        seconds = poke_interval.total_seconds() if isinstance(poke_interval, timedelta) else poke_interval
        check_poll_interval(seconds, "poke_interval")
        super().__init__(poke_interval=poke_interval, **kwargs)
        self.min_chats, self.max_chats = check_chat_counts(min_chats, max_chats)
        if not (isinstance(filters, str) and "{{" in filters):
            filter_rows(filters)  # checked now; a template is checked once rendered
        self.filters = filters
        self.helpcrunch_conn_id = helpcrunch_conn_id
        self.requests_per_minute = requests_per_minute
        self.redis_conn_id = redis_conn_id
        self.deferrable = check_bool(deferrable, "deferrable")

    @cached_property
    def hook(self) -> HelpCrunchHook:
        return HelpCrunchHook(
            self.helpcrunch_conn_id,
            requests_per_minute=self.requests_per_minute,
            redis_conn_id=self.redis_conn_id,
        )

    def poke(self, context: Context) -> PokeReturnValue:
        rows = filter_rows(self.filters)
        try:
            ids = [chat["id"] for chat in self.hook.search_chats(rows, max_chats=self.max_chats)]
        finally:
            self.hook.close()
        self.log.info("%d chat(s) match, %d wanted", len(ids), self.min_chats)
        return PokeReturnValue(is_done=len(ids) >= self.min_chats, xcom_value=ids)

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        first = self.poke(context)  # on the worker once: no deferral when the chats are there already
        if first.is_done:
            return first.xcom_value
        return self.defer(
            trigger=HelpCrunchSearchTrigger(
                helpcrunch_conn_id=self.helpcrunch_conn_id,
                filters=filter_rows(self.filters),
                min_chats=self.min_chats,
                max_chats=self.max_chats,
                poll_interval=float(self.poke_interval),
                requests_per_minute=self.requests_per_minute,
                redis_conn_id=self.redis_conn_id,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=float(self.timeout)) if self.timeout else None,
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> list[int]:
        """Resume from the trigger: the chats found, or the error it met."""
        if not isinstance(event, dict) or event.get("status") != "found":
            message = event.get("message") if isinstance(event, dict) else None
            raise HelpCrunchError(f"The HelpCrunch search the sensor waited on failed: {message or event!r}")
        ids = event["chat_ids"]
        self.log.info("%d chat(s) match, %d wanted", event["count"], self.min_chats)
        return list(ids)
