"""The front end's gunicorn settings: values that fit the function, and gunicorn's precedence kept intact.

gunicorn itself reports the settings it ends up with (``--print-config``, ``--check-config``); the last tests count
the workers of a real pyrie.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from invoke_api import gunicorn_settings
from pyrie_core.frontend_contract import FRONTEND_CONFIG
from tests.conftest import StartPyrie
from tests.harness import RAW_RUNTIME, ROOT, wait_until

DEPLOY_CONF = str(ROOT / "deploy" / "gunicorn.conf.py")
APP = "invoke_api.app:application"
# Variables that would change what gunicorn prints, kept out of each run unless a test sets them.
_SETTINGS_ENV = (
    "GUNICORN_CMD_ARGS",
    "WEB_CONCURRENCY",
    "AWS_LAMBDA_FUNCTION_TIMEOUT",
    "PYRIE_INIT_TIMEOUT",
    "PYRIE_GUNICORN_CONFIG",
    "PYRIE_FRONTEND_LOG_LEVEL",
    "PYRIE_RUNTIME_INTERFACE_EMULATOR_ADDRESS",
)


def gunicorn(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in _SETTINGS_ENV}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "gunicorn", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=environ,
        cwd=ROOT,
        check=False,
    )


def printed_settings(*args: str, env: dict[str, str] | None = None) -> dict[str, str]:
    result = gunicorn("--print-config", *args, APP, env=env)
    assert result.returncode == 0, result.stderr
    settings = {}
    for line in result.stdout.splitlines():
        name, sep, value = line.partition(" = ")
        if sep:
            settings[name.strip()] = value.strip()
    return settings


# --- values --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, 300 + 10 + 10),
        ({"AWS_LAMBDA_FUNCTION_TIMEOUT": "900"}, 900 + 10 + 10),
        ({"AWS_LAMBDA_FUNCTION_TIMEOUT": "3", "PYRIE_INIT_TIMEOUT": "2.5"}, 3 + 3 + 10),
        ({"AWS_LAMBDA_FUNCTION_TIMEOUT": "", "PYRIE_INIT_TIMEOUT": ""}, 300 + 10 + 10),
    ],
)
def test_the_graceful_timeout_outlasts_init_and_the_function_timeout(env, expected):
    assert gunicorn_settings.graceful_timeout(env) == expected


def test_workers_follow_web_concurrency_else_one():
    assert gunicorn_settings.workers({}) == gunicorn_settings.DEFAULT_WORKERS == 1
    assert gunicorn_settings.workers({"WEB_CONCURRENCY": "3"}) == 3
    assert gunicorn_settings.workers({"WEB_CONCURRENCY": "0"}) == 1


@pytest.mark.parametrize(
    ("setting", "name", "value"),
    [
        (gunicorn_settings.graceful_timeout, "AWS_LAMBDA_FUNCTION_TIMEOUT", "abc"),
        (gunicorn_settings.graceful_timeout, "PYRIE_INIT_TIMEOUT", "-1"),
        (gunicorn_settings.workers, "WEB_CONCURRENCY", "nan"),
    ],
)
def test_a_bad_number_names_its_variable(setting, name, value):
    with pytest.raises(ValueError, match=f"^{name}: {value!r} "):
        setting({name: value})


def test_pyrie_defaults_and_the_deploy_file_agree():
    env = {"AWS_LAMBDA_FUNCTION_TIMEOUT": "60", "WEB_CONCURRENCY": "3"}
    builtin = printed_settings("-c", FRONTEND_CONFIG, env=env)
    deploy = printed_settings("-c", DEPLOY_CONF, env=env)
    assert deploy.pop("bind") == "['0.0.0.0:8080']"
    builtin.pop("bind")
    for name in ("config", "wsgi_app"):
        builtin.pop(name, None)
        deploy.pop(name, None)
    # pyrie's own hook (its workers die with their master, under pyrie only): the user's post_fork runs after it
    assert builtin.pop("post_fork") != deploy.pop("post_fork")
    assert builtin == deploy
    assert deploy["graceful_timeout"] == "80"
    assert deploy["workers"] == "3"
    assert deploy["keepalive"] == str(gunicorn_settings.KEEPALIVE_S)
    assert deploy["worker_class"] == gunicorn_settings.WORKER_CLASS == "invoke_api.worker.Worker"
    assert deploy["preload_app"] == "True"
    assert deploy["control_socket_disable"] == "True"


def test_gunicorn_check_config_passes_on_the_deploy_file():
    result = gunicorn("--check-config", "-c", DEPLOY_CONF, APP)
    assert result.returncode == 0, result.stderr


def test_gunicorn_check_config_can_fail(tmp_path):
    broken = tmp_path / "gunicorn.conf.py"
    broken.write_text((ROOT / "deploy" / "gunicorn.conf.py").read_text() + "\nworkers = 'many'\n")
    assert gunicorn("--check-config", "-c", str(broken), APP).returncode != 0


# --- precedence ----------------------------------------------------------------------------------------------------


def test_a_user_file_wins_over_pyrie_defaults_and_keeps_the_rest(tmp_path):
    user = tmp_path / "mine.conf.py"
    user.write_text("workers = 5\nkeepalive = 10\n")
    settings = printed_settings("-c", FRONTEND_CONFIG, env={"PYRIE_GUNICORN_CONFIG": str(user)})
    assert (settings["workers"], settings["keepalive"]) == ("5", "10")
    assert settings["graceful_timeout"] == str(gunicorn_settings.graceful_timeout({}))  # not in the file: pyrie's
    assert settings["worker_class"] == "invoke_api.worker.Worker"


def test_a_post_fork_hook_of_the_user_runs_after_pyrie_own(tmp_path):
    user = tmp_path / "mine.conf.py"
    user.write_text("def post_fork(server, worker):\n    print('user hook', worker.ppid)\n")
    script = (
        "import os, types, invoke_api.gunicorn_conf as conf; "
        "conf.post_fork(None, types.SimpleNamespace(ppid=os.getppid()))"
    )
    environ = {k: v for k, v in os.environ.items() if k not in _SETTINGS_ENV}
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**environ, "PYRIE_GUNICORN_CONFIG": str(user)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"user hook {os.getpid()}\n"


def test_gunicorn_cmd_args_win_over_the_files_and_flags_over_both(tmp_path):
    user = tmp_path / "mine.conf.py"
    user.write_text("workers = 5\ngraceful_timeout = 7\n")
    env = {"PYRIE_GUNICORN_CONFIG": str(user), "GUNICORN_CMD_ARGS": "--workers 6 --keep-alive 11"}
    settings = printed_settings("-c", FRONTEND_CONFIG, env=env)
    assert (settings["workers"], settings["keepalive"], settings["graceful_timeout"]) == ("6", "11", "7")
    flagged = printed_settings("-c", FRONTEND_CONFIG, "--workers", "2", env=env)
    assert flagged["workers"] == "2"


def test_pyrie_puts_no_defaults_on_gunicorn_command_line(start_pyrie: StartPyrie):
    pyrie = start_pyrie(RAW_RUNTIME, extra_env={"PYRIE_WORKERS": ""})
    master = frontend_master(pyrie)
    words = master.cmdline()
    flags = [word for word in words if word.startswith("-")]
    assert flags == ["-m", "--pyrie-own-program", "--config", "--worker-class", "--bind", "--no-control-socket"]
    assert words[words.index("--config") + 1] == FRONTEND_CONFIG


# --- a real pyrie ----------------------------------------------------------------------------------------------------


def frontend_master(pyrie):
    return wait_until(
        lambda: next((p for p in pyrie.psutil.children() if "gunicorn" in " ".join(p.cmdline())), None),
        what="gunicorn",
    )


def wait_for_workers(pyrie, count: int) -> None:
    master = frontend_master(pyrie)
    wait_until(lambda: len(master.children()) == count, what=f"{count} gunicorn workers")
    assert pyrie.invoke(b"{}").status_code == 200


@pytest.mark.parametrize(
    ("extra_env", "config", "workers"),
    [
        ({"PYRIE_WORKERS": ""}, None, 1),
        ({"PYRIE_WORKERS": "", "GUNICORN_CMD_ARGS": "--workers 3"}, None, 3),
        ({"PYRIE_WORKERS": ""}, "workers = 2\n", 2),
        ({"PYRIE_WORKERS": "1", "GUNICORN_CMD_ARGS": "--workers 3"}, "workers = 2\n", 1),
    ],
    ids=["cpu-count", "gunicorn-cmd-args", "gunicorn-config", "pyrie-workers-wins"],
)
def test_pyrie_runs_the_workers_its_configuration_asks_for(
    start_pyrie: StartPyrie, tmp_path, extra_env, config, workers
):
    env = {**extra_env, "RAW_SCENARIO": "echo"}
    args = [sys.executable, RAW_RUNTIME]
    if config is not None:
        (tmp_path / "gunicorn.conf.py").write_text(config)
        args = ["--gunicorn-config", str(tmp_path / "gunicorn.conf.py"), *args]
    pyrie = start_pyrie(*args, extra_env=env)
    wait_for_workers(pyrie, workers)
