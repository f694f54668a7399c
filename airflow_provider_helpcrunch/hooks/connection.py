"""
The ``helpcrunch`` Airflow connection.

Its fields, how they resolve into the hook's settings, and the connection form. ``get_provider_info`` and the
hook's form methods are both derived from this one table.

Airflow reads ``get_provider_info()`` while it is importing itself, so this module imports nothing of
Airflow's (not even through the provider's errors) until a setting is resolved.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

from airflow_provider_helpcrunch.outside_text import short_repr

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Connection

    from airflow_provider_helpcrunch.exceptions import HelpCrunchConfigError

CONN_TYPE = "helpcrunch"
DEFAULT_CONN_ID = "helpcrunch_default"
DEFAULT_BASE_URL = "https://api.helpcrunch.com/v1"


@dataclass(frozen=True)
class ExtraField:
    """One setting kept in the connection's ``extra``, shown as a field of the connection form."""

    name: str
    label: str
    description: str
    default: int | None
    minimum: int | None
    kind: type = int  # what the value is read as: int, float or str


#: The connection's extra fields; the hook reads them, the form shows them.
EXTRA_FIELDS: tuple[ExtraField, ...] = (
    ExtraField(
        "requests_per_minute",
        "Requests per minute",
        "The account's API limit. Keep it at 120 unless HelpCrunch raised it for you.",
        default=120,
        minimum=1,
    ),
    ExtraField(
        "timeout",
        "Timeout (seconds)",
        "Seconds one attempt may take in all: connecting, sending and reading the whole answer.",
        default=30,
        minimum=1,
        kind=float,
    ),
    ExtraField(
        "max_retries",
        "Max retries",
        "Retries after a 5xx, a timeout or a dropped connection (0: none); 429s are waited out instead.",
        default=5,
        minimum=0,
    ),
    ExtraField(
        "redis_conn_id",
        "Redis connection ID",
        "Share one request budget per HelpCrunch account across every task and worker through this Airflow "
        "Redis connection (needs apache-airflow-providers-redis). Empty: each task paces on its own.",
        default=None,
        minimum=None,
        kind=str,
    ),
)
EXTRA_FIELDS_BY_NAME = {extra.name: extra for extra in EXTRA_FIELDS}

#: How the standard fields of the form are hidden, relabelled and filled in.
HIDDEN_FIELDS = ["schema", "login", "port", "extra"]
RELABELING = {"host": "API base URL", "password": "API key"}
PLACEHOLDERS = {"host": DEFAULT_BASE_URL, "password": "HelpCrunch public API key"}


def provider_info_form() -> dict[str, Any]:
    """Return the form as ``get_provider_info()`` declares it (Airflow 3.2 and later read it there)."""
    return {
        "ui-field-behaviour": {
            "hidden-fields": HIDDEN_FIELDS,
            "relabeling": RELABELING,
            "placeholders": PLACEHOLDERS,
        },
        "conn-fields": {
            extra.name: {"label": extra.label, "description": extra.description, "schema": _schema(extra)}
            for extra in EXTRA_FIELDS
        },
    }


#: the JSON-schema type of each kind of extra, as the form (Airflow 3.2 and later) offers it.
_SCHEMA_TYPES = {int: "integer", float: "number", str: "string"}


def _schema(extra: ExtraField) -> dict[str, Any]:
    if extra.kind is str:
        return {"type": ["string", "null"]}
    return {"type": [_SCHEMA_TYPES[extra.kind], "null"], "minimum": extra.minimum, "default": extra.default}


def ui_field_behaviour() -> dict[str, Any]:
    """Return the form's standard fields as the hook method declares them (Airflow 2.11 to 3.1)."""
    return {"hidden_fields": HIDDEN_FIELDS, "relabeling": RELABELING, "placeholders": PLACEHOLDERS}


def connection_form_widgets() -> dict[str, Any]:
    """
    Return the form's extra fields as the hook method declares them (Airflow 2.11 to 3.1).

    These versions offer no decimal field (only integer, string, password and boolean ones), so a fractional
    setting such as the timeout is a text field that must hold a number.
    """
    from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
    from flask_babel import lazy_gettext
    from wtforms import IntegerField, StringField
    from wtforms.validators import NumberRange, Optional

    widgets: dict[str, Any] = {}
    for extra in EXTRA_FIELDS:
        label = lazy_gettext(extra.label)
        if extra.kind is str:
            widgets[extra.name] = StringField(
                label, description=extra.description, widget=BS3TextFieldWidget()
            )
        elif extra.kind is float:
            widgets[extra.name] = StringField(
                label,
                description=extra.description,
                validators=[Optional(), _number_at_least(extra.minimum)],
                widget=BS3TextFieldWidget(),
                default=str(extra.default),
            )
        else:
            widgets[extra.name] = IntegerField(
                label,
                description=extra.description,
                validators=[Optional(), NumberRange(min=extra.minimum)],
                widget=BS3TextFieldWidget(),
                default=extra.default,
            )
    return widgets


def _number_at_least(minimum: int | None) -> Any:
    """Return a form validator: the text is a number (fractions allowed) of at least ``minimum``."""
    from wtforms.validators import ValidationError

    def check(form: Any, field: Any) -> None:
        try:
            number = float(field.data)
        except (TypeError, ValueError):
            raise ValidationError(f"Expected a number, such as 2.5; got {short_repr(field.data)}") from None
        if minimum is not None and not number >= minimum:
            raise ValidationError(f"Expected a number of at least {minimum}; got {short_repr(field.data)}")

    return check


# ---------------------------------------------------------------------- settings


def _config_error(message: str) -> HelpCrunchConfigError:
    from airflow_provider_helpcrunch.exceptions import HelpCrunchConfigError

    return HelpCrunchConfigError(message)


@dataclass(frozen=True)
class HelpCrunchSettings:
    """What the hook resolved from the connection and its own arguments."""

    base_url: str
    api_key: str = field(repr=False)
    requests_per_minute: int
    timeout: float
    max_retries: int
    redis_conn_id: str | None = None


def resolve_settings(conn: Connection, conn_id: str, **overrides: Any) -> HelpCrunchSettings:
    """
    Return the connection's settings, checked.

    ``overrides`` (hook arguments, ``None`` for unset) win over the extras. Raises
    :class:`HelpCrunchConfigError` naming the connection, never quoting the key.
    """
    where = f"Airflow connection {conn_id!r}"
    extra = conn.extra_dejson
    values = {spec.name: _setting(spec, overrides.get(spec.name), extra, where) for spec in EXTRA_FIELDS}
    return HelpCrunchSettings(
        base_url=base_url(conn.host, conn.port, where),
        api_key=api_key(conn.password, where),
        **values,
    )


def api_key(password: str | None, where: str) -> str:
    """
    Return the key, outer whitespace stripped.

    Refused (never quoted) unless printable ASCII without spaces.
    """
    key = (password or "").strip()
    if not key:
        raise _config_error(
            f"{where} has no API key: put the HelpCrunch public API key in its password field."
        )
    if not all("!" <= char <= "~" for char in key):
        raise _config_error(
            f"{where} has an API key with a character no HelpCrunch key has (a space, a line break, a "
            "control or non-ASCII character): copy the key again into the connection's password field."
        )
    return key


def is_loopback(hostname: str) -> bool:
    """``localhost``, 127.0.0.0/8 and ``::1`` only (``*.localhost`` names may resolve anywhere)."""
    if hostname.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


#: the port each scheme means when none is given: an explicit one is dropped from the canonical URL.
DEFAULT_PORTS = {"https": 443, "http": 80}


def _port(parts: SplitResult, host: str | None, port: Any, where: str) -> int | None:
    """Return the port the host names, else the connection's port field, else ``None``; checked."""
    try:
        url_port = parts.port
    except ValueError:
        raise _config_error(
            f"{where} has a host with an invalid port ({short_repr(host)}): expected a number from 1 to 65535"
        ) from None
    if url_port is not None or not port:
        return url_port
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port <= 65535:
        raise _config_error(
            f"{where} has an invalid port {short_repr(port)}: expected a number from 1 to 65535"
        )
    return port


def base_url(host: str | None, port: Any, where: str) -> str:
    """
    Return the connection's host as the canonical API base URL.

    One spelling per account, from which the URLs sent, the log lines and the shared window's Redis key are
    all derived. The scheme and host name are lower-cased (an international name in its ASCII form), a port
    the scheme implies is dropped, and so is a trailing slash. Only loopback hosts may use plain http.
    """
    raw = (host or "").strip()
    if not raw:
        return DEFAULT_BASE_URL
    if "://" not in raw:
        raw = "https://" + raw
    try:
        parts = urlsplit(raw)
    except ValueError:
        raise _config_error(
            f"{where} has an unusable host: expected a URL such as {DEFAULT_BASE_URL}"
        ) from None
    if "@" in parts.netloc:
        raise _config_error(
            f"{where} has a user name or password in its host: put the API key in the password field and "
            "only the URL in the host."
        )
    scheme = parts.scheme.lower()
    hostname = _ascii_hostname(parts.hostname or "")
    if scheme not in DEFAULT_PORTS or not hostname:
        raise _config_error(
            f"{where} has an unusable host {short_repr(host)}: expected a URL such as {DEFAULT_BASE_URL}"
        )
    if scheme == "http" and not is_loopback(hostname):
        raise _config_error(
            f"{where} points at http://{hostname}: the API key is sent only over HTTPS. Use https:// "
            "(plain http is allowed for loopback hosts only: localhost, 127.0.0.0/8 and ::1)."
        )
    url_port = _port(parts, host, port, where)
    netloc = f"[{hostname}]" if ":" in hostname else hostname
    if url_port is not None and url_port != DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{url_port}"
    path = parts.path.rstrip("/") or "/v1"
    return urlunsplit((scheme, netloc, path, "", ""))


def _ascii_hostname(hostname: str) -> str:
    """
    Return the host name lower-cased, an international one in its ASCII (IDNA) form.

    Empty when unusable.
    """
    try:
        return hostname.encode("idna").decode("ascii").lower() if hostname else ""
    except UnicodeError:
        return ""


def _setting(spec: ExtraField, argument: Any, extra: dict[str, Any], where: str) -> Any:
    """
    Return the hook argument, else the extra (plain or ``extra__helpcrunch__`` prefixed), else the default.

    Checked against the field's minimum.
    """
    if argument is not None:
        value, source = argument, f"argument {spec.name}"
    else:
        value = extra.get(spec.name)
        if value in (None, ""):
            value = extra.get(f"extra__{CONN_TYPE}__{spec.name}")
        source = f"extra {spec.name!r} of {where}"
        if value in (None, ""):
            return None if spec.default is None else spec.kind(spec.default)
    if spec.kind is str:
        if not isinstance(value, str) or not value.strip():
            raise _config_error(f"{source} must be a connection ID, got {short_repr(value)}")
        return value.strip()
    try:
        if isinstance(value, bool):
            raise ValueError
        number = spec.kind(value)
        if spec.kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
    except (TypeError, ValueError):
        raise _config_error(f"{source} must be a number, got {short_repr(value)}") from None
    if spec.minimum is not None and number < spec.minimum:
        raise _config_error(f"{source} must be at least {spec.minimum}, got {short_repr(value)}")
    return number


def redis_client(redis_conn_id: str) -> Any:
    """Return a client from Airflow's Redis provider, with time bounds on connecting and on every command."""
    try:
        from airflow.providers.redis.hooks.redis import RedisHook
    except ImportError as err:  # the optional extra is not installed
        raise _config_error(
            "redis_conn_id is set, but apache-airflow-providers-redis is not installed: "
            'pip install "airflow-provider-helpcrunch[redis]"'
        ) from err
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from airflow_provider_helpcrunch.client.shared_window import REDIS_TIMEOUT

    client = RedisHook(redis_conn_id=redis_conn_id).get_conn()
    # No command may take longer than REDIS_TIMEOUT: redis-py would retry a timed-out command (10 times,
    # with backoff, in redis 8) before the pacer could fall back; here a failure is final at once.
    client.connection_pool.connection_kwargs.update(
        socket_timeout=REDIS_TIMEOUT,
        socket_connect_timeout=REDIS_TIMEOUT,
        retry_on_error=[],
    )
    client.set_retry(Retry(NoBackoff(), 0))
    return client


async def aget_connection(conn_id: str) -> Connection:
    """Read an Airflow connection without blocking the event loop (Airflow 3's lookup, else a thread)."""
    from airflow.providers.common.compat.sdk import BaseHook

    lookup = getattr(BaseHook, "aget_connection", None)
    if lookup is not None:
        return await lookup(conn_id)  # type: ignore[no-any-return]
    from asgiref.sync import sync_to_async

    connection: Connection = await sync_to_async(BaseHook.get_connection)(conn_id)
    return connection


async def aredis_client(redis_conn_id: str) -> Any:
    """
    Return a ``redis.asyncio`` client for an Airflow ``redis`` connection, bounded as :func:`redis_client`.

    Host, port, login, password, and the extras ``db`` and ``ssl`` are read as Airflow's Redis provider reads
    them (no cluster mode).
    """
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    from airflow_provider_helpcrunch.client.shared_window import REDIS_TIMEOUT

    connection = await aget_connection(redis_conn_id)
    extra = connection.extra_dejson
    password = connection.password
    return Redis(
        host=connection.host or "localhost",
        port=connection.port or 6379,
        username=connection.login or None,
        password=None if str(password).lower() in ("none", "false", "") else password,
        db=int(extra.get("db") or 0),
        ssl=bool(extra.get("ssl", False)),
        socket_timeout=REDIS_TIMEOUT,
        socket_connect_timeout=REDIS_TIMEOUT,
        retry=Retry(NoBackoff(), 0),
    )
