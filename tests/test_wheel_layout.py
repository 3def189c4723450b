"""pyrie's wheel installed beside a function's own packages shadows none of them (setup.py, packaging/pyrie).

A real ``pip install --target`` of the wheel built from this tree, into a directory that also gets a package named
``supervisor`` (as Supervisord's is): the function's ``import supervisor`` gets its own, and pyrie, run from that
directory, still runs its own supervisor (a foreign one would stop it at start with an error).
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.harness import ROOT, free_port, wait_until

pytestmark = pytest.mark.slow

FUNCTION = """import supervisor


def handler(event, context):
    return {"supervisor": supervisor.WHO}
"""


def pip(*args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pyrie's wheel and a ``supervisor`` of another project, both pip-installed into one target directory."""
    work = tmp_path_factory.mktemp("wheel")
    pip("wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir", str(work / "wheels"), str(ROOT))
    other = work / "supervisord"
    (other / "supervisor").mkdir(parents=True)
    (other / "supervisor" / "__init__.py").write_text('WHO = "supervisord"\n')
    (other / "setup.cfg").write_text(
        "[metadata]\nname = supervisor\nversion = 4.2.5\n[options]\npackages = supervisor\n"
    )
    (other / "setup.py").write_text("from setuptools import setup\nsetup()\n")
    installed = work / "target"
    (wheel,) = (work / "wheels").glob("pyrie-*.whl")
    for source in (str(other), str(wheel)):
        pip("install", "--quiet", "--no-deps", "--no-index", "--no-build-isolation", "--target", str(installed), source)
    return installed


def test_the_wheel_puts_only_pyrie_at_the_top_of_site_packages(target: Path) -> None:
    (wheel,) = (target.parent / "wheels").glob("pyrie-*.whl")
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert tops == {"pyrie", "pyrie-0.1.0.dist-info"}, tops
    assert (target / "supervisor" / "__init__.py").read_text() == 'WHO = "supervisord"\n'
    assert (target / "pyrie" / "_lib" / "supervisor" / "arbiter.py").exists()


def test_the_function_gets_its_own_package_and_pyrie_runs_its_own(target: Path, tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(FUNCTION)
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(target),
        "PYRIE_RUNTIME_INTERFACE_EMULATOR_ADDRESS": f"127.0.0.1:{port}",
        "PYRIE_RUNTIME_API_ADDRESS": f"127.0.0.1:{free_port()}",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "pyrie", "app.handler"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )

    def answer() -> bytes | None:
        assert process.poll() is None, process.communicate()[0].decode()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            connection.request("POST", "/2015-03-31/functions/function/invocations", b"{}")
            return connection.getresponse().read()
        except OSError:
            return None
        finally:
            connection.close()

    try:
        assert wait_until(answer, timeout=60, interval=0.05, what="pyrie from the target directory") == (
            b'{"supervisor": "supervisord"}'
        )
        ours = subprocess.run(
            [sys.executable, "-c", "import pyrie; print(pyrie.__file__)"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert Path(ours.stdout.strip()).is_relative_to(target)
    finally:
        process.terminate()
        process.communicate(timeout=30)
    assert process.returncode == 0
