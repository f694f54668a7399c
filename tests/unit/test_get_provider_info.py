"""The provider registers the way Airflow expects, on every supported version, with no deprecation."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
import warnings
from importlib import metadata, resources

import jsonschema

from airflow_provider_helpcrunch import __version__
from airflow_provider_helpcrunch.get_provider_info import get_provider_info
from airflow_provider_helpcrunch.hooks.helpcrunch import HelpCrunchHook
from tests.helpers import REPO

DISTRIBUTION = "airflow-provider-helpcrunch"
PACKAGE = REPO / "airflow_provider_helpcrunch"


def test_provider_info_validates_against_airflows_own_schema():
    schema = json.loads(resources.files("airflow").joinpath("provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_package_name_and_version_match_the_distribution():
    info = get_provider_info()
    assert info["package-name"] == DISTRIBUTION
    assert metadata.version(DISTRIBUTION) == __version__
    assert info["versions"] == [__version__]


def test_entry_point_resolves_to_get_provider_info():
    (entry_point,) = [
        ep
        for ep in metadata.entry_points(group="apache_airflow_provider")
        if ep.value.startswith("airflow_provider_")
    ]
    assert entry_point.load() is get_provider_info


def test_declared_modules_and_classes_import():
    info = get_provider_info()
    for section in ("hooks", "operators", "sensors", "triggers"):
        for entry in info[section]:
            for module in entry["python-modules"]:
                importlib.import_module(module)
    (conn,) = info["connection-types"]
    module, _, name = conn["hook-class-name"].rpartition(".")
    assert getattr(importlib.import_module(module), name) is HelpCrunchHook
    assert conn["connection-type"] == HelpCrunchHook.conn_type


def test_form_is_declared_the_same_both_ways():
    (conn,) = get_provider_info()["connection-types"]
    behaviour = conn["ui-field-behaviour"]
    assert HelpCrunchHook.get_ui_field_behaviour() == {
        "hidden_fields": behaviour["hidden-fields"],
        "relabeling": behaviour["relabeling"],
        "placeholders": behaviour["placeholders"],
    }
    assert behaviour["relabeling"]["password"] == "API key"
    assert behaviour["placeholders"]["host"] == "https://api.helpcrunch.com/v1"
    types = {
        "requests_per_minute": ["integer", "null"],
        "timeout": ["number", "null"],  # the hook takes fractions of a second: so does the form
        "max_retries": ["integer", "null"],
        "redis_conn_id": ["string", "null"],
    }
    assert {name: field["schema"]["type"] for name, field in conn["conn-fields"].items()} == types
    assert all(field["label"] for field in conn["conn-fields"].values())
    # the form accepts what the hook accepts: no retries at all is a valid choice
    assert conn["conn-fields"]["max_retries"]["schema"]["minimum"] == 0
    assert conn["conn-fields"]["requests_per_minute"]["schema"]["minimum"] == 1


def test_providers_manager_discovers_hook_and_form_without_warnings():
    from airflow.providers_manager import ProvidersManager

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        manager = ProvidersManager()
        providers = manager.providers
        hook = manager.hooks["helpcrunch"]
        widgets = manager.connection_form_widgets
        behaviours = manager.field_behaviours
    assert DISTRIBUTION in providers
    assert hook.hook_class_name == "airflow_provider_helpcrunch.hooks.helpcrunch.HelpCrunchHook"
    assert hook.connection_id_attribute_name == "helpcrunch_conn_id"
    assert hook.hook_name == "HelpCrunch"
    for name in ("requests_per_minute", "timeout", "max_retries", "redis_conn_id"):
        assert f"extra__helpcrunch__{name}" in widgets
    timeout_field = widgets["extra__helpcrunch__timeout"].field
    if not isinstance(timeout_field, dict):  # the Airflow 2.11-3.1 form takes 2.5 s too, as the hook does
        assert_the_form_takes_a_fractional_timeout()
    assert behaviours["helpcrunch"]["relabeling"]["password"] == "API key"
    assert "login" in behaviours["helpcrunch"]["hidden_fields"]
    ours = [
        str(w.message) for w in caught if "HelpCrunch" in str(w.message) or "helpcrunch" in str(w.message)
    ]
    assert ours == []


# Imports that moved or are deprecated somewhere between Airflow 2.11 and 3.3; compat resolves them.
FORBIDDEN_IMPORTS = (
    "airflow.hooks.base",
    "airflow.models.baseoperator",
    "airflow.models.dag",
    "airflow.models.param",
    "airflow.utils.log.secrets_masker",
    "airflow.utils.context",
    "airflow.decorators",
    "airflow.exceptions",
    "airflow.sdk",
)


# Names that exist only from Airflow 3, with nothing in compat to resolve them: taken where imported in a
# ``try`` that handles ImportError (the code then works without them on 2.11).
AIRFLOW_3_ONLY = frozenset({"airflow.sdk.AssetWatcher"})


def _is_forbidden(module: str) -> bool:
    """The module is one of FORBIDDEN_IMPORTS or inside one (whole names: ``dagbag`` is not ``dag``)."""
    return any(module == name or module.startswith(name + ".") for name in FORBIDDEN_IMPORTS)


def _imports(path) -> set[str]:
    tree = ast.parse(path.read_text())
    guarded = {
        id(node)
        for handler_try in ast.walk(tree)
        if isinstance(handler_try, ast.Try)
        and any(
            isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
            for h in handler_try.handlers
        )
        for node in handler_try.body
    }
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = {f"{node.module}.{alias.name}" for alias in node.names}
            if id(node) in guarded and names <= AIRFLOW_3_ONLY:
                continue  # a guarded import of what only Airflow 3 has
            found.add(node.module)
            found.update(names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_no_moved_or_deprecated_airflow_import_in_the_package_or_examples():
    sources = [*PACKAGE.rglob("*.py"), *(REPO / "example_dags").glob("*.py")]
    offenders = {
        str(path.relative_to(REPO)): sorted(m for m in _imports(path) if _is_forbidden(m)) for path in sources
    }
    assert {path: found for path, found in offenders.items() if found} == {}


def test_importing_everything_warns_of_nothing_of_ours():
    """A fresh interpreter imports every module of the package; no warning may point into it."""
    modules = sorted(
        ".".join(path.relative_to(REPO).with_suffix("").parts)
        for path in PACKAGE.rglob("*.py")
        if path.name != "__main__.py"
    )
    script = (
        "import importlib, warnings, json\n"
        "warnings.simplefilter('always')\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        f"    for name in {modules!r}:\n"
        "        importlib.import_module(name.removesuffix('.__init__'))\n"
        "print(json.dumps([f'{w.filename}: {w.message}' for w in caught"
        " if 'airflow_provider_helpcrunch' in w.filename]))\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == []


def test_airflow_cli_lists_the_provider_and_hook_without_warnings():
    """What a user runs: `airflow providers list` and `airflow providers hooks`."""
    for command, expected in (("list", DISTRIBUTION), ("hooks", "HelpCrunchHook")):
        completed = subprocess.run(
            [sys.executable, "-m", "airflow", "providers", command, "-o", "plain"],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        assert expected in completed.stdout
        warned = [line for line in completed.stderr.splitlines() if "helpcrunch" in line.lower()]
        assert warned == []


def assert_the_form_takes_a_fractional_timeout():
    """The 2.11-3.1 form's timeout field, bound to a form: 2.5 passes, text and 0.5 are refused by name."""
    from flask import Flask
    from werkzeug.datastructures import MultiDict
    from wtforms import Form

    class ConnectionForm(Form):
        timeout = HelpCrunchHook.get_connection_form_widgets()["timeout"]

    with Flask(__name__).test_request_context():
        for value, error in (
            ("2.5", None),
            ("30", None),
            ("", None),
            ("soon", "'soon'"),
            ("0.5", "at least 1"),
        ):
            form = ConnectionForm(formdata=MultiDict({"timeout": value}))  # as the browser posts it
            assert form.validate() is (error is None), (value, form.errors)
            if error is not None:
                assert error in form.errors["timeout"][0]
