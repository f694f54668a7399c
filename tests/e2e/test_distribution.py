"""The package as it ships: the sdist and the wheel build and pass ``twine check``, and Airflow registers the
provider from the installed wheel, not from this checkout."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.e2e


def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    completed = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False, **kwargs)
    assert completed.returncode == 0, f"{' '.join(args)}:\n{completed.stdout}\n{completed.stderr}"
    return completed


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    run(
        sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel", "--outdir", str(out), str(REPO)
    )
    return out


def test_sdist_and_wheel_pass_twine_check(dist):
    assert len(list(dist.glob("*.tar.gz"))) == 1
    assert len(list(dist.glob("*.whl"))) == 1
    run(sys.executable, "-m", "twine", "check", "--strict", *(str(p) for p in dist.iterdir()))


def test_wheel_ships_types_license_and_the_testing_package(dist):
    (wheel,) = dist.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "airflow_provider_helpcrunch/py.typed" in names
    assert "airflow_provider_helpcrunch/testing/server.py" in names
    for stream in ("chats", "messages", "customers"):  # the export's schemas, read at run time
        assert f"airflow_provider_helpcrunch/schemas/{stream}.v1.json" in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    assert not any(name.startswith(("tests/", "example_dags/")) for name in names)
    assert "airflow_provider_helpcrunch/hooks/__init__.py" in names
    assert "airflow_provider_helpcrunch/operators/__init__.py" in names
    # the pytest fixtures are opt-in: no pytest11 entry point loads them wherever the provider is installed
    (entry_points,) = [name for name in names if name.endswith(".dist-info/entry_points.txt")]
    registered = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[apache_airflow_provider]" in registered
    assert "pytest11" not in registered


def test_airflow_registers_the_provider_from_the_installed_wheel(dist, tmp_path):
    (wheel,) = dist.glob("*.whl")
    target = tmp_path / "site"
    run(sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel))
    probe = (
        "import json, airflow_provider_helpcrunch as package\n"
        "from airflow.providers_manager import ProvidersManager\n"
        "manager = ProvidersManager()\n"
        "print(json.dumps({'module': package.__file__,\n"
        "    'providers': sorted(manager.providers), 'hook': manager.hooks['helpcrunch'].hook_class_name}))\n"
    )
    # A fresh interpreter, away from the checkout, with the installed wheel ahead of everything else.
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "AIRFLOW_HOME": str(tmp_path / "home")}
    found = json.loads(
        run(sys.executable, "-c", probe, cwd=tmp_path, env=env).stdout.strip().splitlines()[-1]
    )
    assert found["module"].startswith(str(target))
    assert "airflow-provider-helpcrunch" in found["providers"]
    assert found["hook"] == "airflow_provider_helpcrunch.hooks.helpcrunch.HelpCrunchHook"
    listed = run(
        sys.executable, "-m", "airflow", "providers", "list", "--output", "json", cwd=tmp_path, env=env
    ).stdout
    assert "airflow-provider-helpcrunch" in listed
