"""The command line and configuration (supervisor.cli, supervisor.config), rie-behaviour.md §2-§3 and DESIGN §3.

Every parse gets an explicit ``environ`` and ``cwd``; the default bootstrap paths and /var/task are patched to
paths under tmp_path, so nothing depends on the machine the tests run on.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pyrie_core.address import Address
from pyrie_core.function_names import ACCOUNT_ID, REGION
from supervisor import cli
from supervisor.cli import RUNTIME_CLIENT, HelpRequested, parse, split_argv
from supervisor.config import Config, ConfigError


@pytest.fixture
def task_root(tmp_path, monkeypatch):
    """/var/task, /opt and /var/runtime under tmp_path, empty; the default bootstraps point into them."""
    roots = {name: tmp_path / "root" / name for name in ("var/task", "opt", "var/runtime")}
    for path in roots.values():
        path.mkdir(parents=True)
    monkeypatch.setattr(
        cli,
        "DEFAULT_BOOTSTRAPS",
        (
            str(roots["var/task"] / "bootstrap"),
            str(roots["opt"] / "bootstrap"),
            str(roots["var/runtime"] / "bootstrap"),
        ),
    )
    monkeypatch.setattr(cli, "DEFAULT_TASK_ROOT", str(roots["var/task"]))
    return roots


@pytest.fixture
def boot(tmp_path) -> str:
    """An executable bootstrap file, by absolute path."""
    return make_executable(tmp_path / "bin" / "bootstrap")


def make_executable(path: Path, mode: int = 0o755) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(mode)
    return str(path)


def run(argv, environ=None, cwd=None) -> Config:
    """parse() with an empty environment unless one is given; cwd must always be given."""
    assert cwd is not None
    return parse(list(argv), environ={} if environ is None else environ, cwd=str(cwd))


def error_of(argv, environ=None, cwd=None) -> str:
    with pytest.raises(ConfigError) as refused:
        run(argv, environ, cwd)
    return str(refused.value)


# --- split_argv: where pyrie's options end and the bootstrap's argv begins --------------------------------------


def test_no_arguments():
    assert split_argv([]) == ({}, [])


def test_go_flags_before_the_bootstrap_are_removed():
    values, command = split_argv(["--log-level", "debug", "--runtime-api-address", "127.0.0.1:9002", "/b", "h.f"])
    assert values == {"--log-level": "debug", "--runtime-api-address": "127.0.0.1:9002"}
    assert command == ["/b", "h.f"]


def test_go_flags_after_the_bootstrap_are_recognised_and_removed():
    # The observed case from rie-behaviour.md §2.1.
    argv = ["/usr/bin/python3", "-u", "boot.py", "--foo", "-x", "--log-level", "debug", "extra.handler"]
    values, command = split_argv(argv)
    assert values == {"--log-level": "debug"}
    assert command == ["/usr/bin/python3", "-u", "boot.py", "--foo", "-x", "extra.handler"]


def test_go_flag_after_the_handler_is_removed():
    # The Go emulator's integ test test_port_override passes the address after the handler.
    values, command = split_argv(["/b", "app.handler", "--runtime-interface-emulator-address", "0.0.0.0:8081"])
    assert values == {"--runtime-interface-emulator-address": "0.0.0.0:8081"}
    assert command == ["/b", "app.handler"]


def test_flag_equals_value_form():
    values, command = split_argv(["--log-level=debug", "/b", "--runtime-api-address=127.0.0.1:9100", "x"])
    assert values == {"--log-level": "debug", "--runtime-api-address": "127.0.0.1:9100"}
    assert command == ["/b", "x"]


def test_value_containing_equals_signs_is_kept_whole():
    values, _ = split_argv(["--log-level=a=b"])
    assert values == {"--log-level": "a=b"}


def test_switch_takes_no_value():
    values, command = split_argv(["--enable-init-caching", "/b", "h.f"])
    assert values == {"--enable-init-caching": "true"}
    assert command == ["/b", "h.f"]


def test_unknown_options_stay_in_place():
    values, command = split_argv(["--foo", "/b", "-u", "--bar=1", "--log-level", "warn", "-x", "h.f"])
    assert values == {"--log-level": "warn"}
    assert command == ["--foo", "/b", "-u", "--bar=1", "-x", "h.f"]


def test_a_prefix_of_a_known_flag_is_unknown():
    values, command = split_argv(["/b", "--log", "debug", "--log-levels", "x"])
    assert values == {}
    assert command == ["/b", "--log", "debug", "--log-levels", "x"]


def test_double_dash_ends_options():
    values, command = split_argv(["--log-level", "debug", "--", "/b", "--log-level", "trace", "-h", "--"])
    assert values == {"--log-level": "debug"}
    assert command == ["/b", "--log-level", "trace", "-h", "--"]


def test_double_dash_first_leaves_everything_to_the_bootstrap():
    assert split_argv(["--", "--help"]) == ({}, ["--help"])


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_before_the_command_is_pyries(flag):
    with pytest.raises(HelpRequested):
        split_argv([flag])
    with pytest.raises(HelpRequested):
        split_argv(["--log-level", "debug", flag, "/b", "h.f"])


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_after_the_command_belongs_to_the_bootstrap(flag):
    values, command = split_argv(["/b", flag, "--log-level", "debug"])
    assert values == {"--log-level": "debug"}
    assert command == ["/b", flag]


def test_parse_raises_help_requested(tmp_path):
    with pytest.raises(HelpRequested):
        run(["--help"], cwd=tmp_path)


@pytest.mark.parametrize(
    ("flag", "metavar"),
    [
        ("--log-level", "LEVEL"),
        ("--runtime-api-address", "HOST:PORT"),
        ("--runtime-interface-emulator-address", "HOST:PORT"),
        ("--workers", "N"),
        ("--init-timeout", "SECONDS"),
        ("--gunicorn-config", "PATH"),
        ("--supervisor-address", "HOST:PORT"),
    ],
)
def test_missing_value(flag, metavar):
    with pytest.raises(ConfigError) as refused:
        split_argv(["/b", flag])
    assert str(refused.value) == f"{flag} needs a value ({metavar})"


def test_help_text_lists_every_option_and_its_environment_twin():
    text = cli.help_text()
    assert text.startswith("usage: pyrie [OPTIONS] [BOOTSTRAP [ARGS...]]")
    assert "-h, --help" in text
    for option in cli.OPTIONS:
        assert option.flag in text
        if option.env:
            assert option.env in text
    for variable in ("AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_TIMEOUT", "AWS_LAMBDA_FUNCTION_HANDLER"):
        assert variable in text


def test_every_pyrie_option_but_the_go_flags_has_a_pyrie_twin():
    for option in cli.OPTIONS:
        if not option.go_flag:
            assert option.env == "PYRIE_" + option.flag[2:].upper().replace("-", "_")


# --- defaults ---------------------------------------------------------------------------------------------------


def test_defaults(tmp_path, boot):
    config = run([boot], cwd=tmp_path)
    assert config.invoke_address == Address("0.0.0.0", 8080)
    assert config.runtime_api_address == Address("127.0.0.1", 9001)
    assert config.log_level == "INFO"
    assert config.workers is None  # gunicorn's configuration decides: one unless it says otherwise
    assert config.init_timeout_s == 10.0
    assert config.gunicorn_config is None
    assert config.supervisor_address is None
    assert config.supervisor_token is None
    function = config.function
    assert function.name == "test_function"
    assert function.version == "$LATEST"
    assert function.timeout_s == 300
    assert function.memory_mb == 3008
    assert function.command == (boot,)
    assert function.cwd == str(tmp_path)
    assert function.handler is None


def test_the_arn_format(tmp_path, boot):
    assert ACCOUNT_ID == "012345678912"
    assert REGION == "us-east-1"
    assert run([boot], cwd=tmp_path).function.arn == "arn:aws:lambda:us-east-1:012345678912:function:test_function"
    named = run([boot], {"AWS_LAMBDA_FUNCTION_NAME": "my-fn"}, cwd=tmp_path)
    assert named.function.arn == "arn:aws:lambda:us-east-1:012345678912:function:my-fn"


def test_function_settings_from_the_environment(tmp_path, boot):
    environ = {
        "AWS_LAMBDA_FUNCTION_NAME": "orders",
        "AWS_LAMBDA_FUNCTION_VERSION": "7",
        "AWS_LAMBDA_FUNCTION_TIMEOUT": "3",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
    }
    function = run([boot], environ, cwd=tmp_path).function
    assert (function.name, function.version, function.timeout_s, function.memory_mb) == ("orders", "7", 3, 128)


def test_empty_environment_values_count_as_unset(tmp_path, boot):
    environ = {
        name: ""
        for name in (
            "AWS_LAMBDA_FUNCTION_NAME",
            "AWS_LAMBDA_FUNCTION_VERSION",
            "AWS_LAMBDA_FUNCTION_TIMEOUT",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            "AWS_LAMBDA_FUNCTION_HANDLER",
            "_HANDLER",
            "LOG_LEVEL",
            "PYRIE_RUNTIME_API_ADDRESS",
            "PYRIE_RUNTIME_INTERFACE_EMULATOR_ADDRESS",
            "PYRIE_WORKERS",
            "PYRIE_INIT_TIMEOUT",
            "PYRIE_GUNICORN_CONFIG",
            "PYRIE_SUPERVISOR_ADDRESS",
        )
    }
    config = run([boot], environ, cwd=tmp_path)
    function = config.function
    assert (function.name, function.version, function.timeout_s, function.memory_mb) == (
        "test_function",
        "$LATEST",
        300,
        3008,
    )
    assert function.handler is None
    assert config.log_level == "INFO"
    assert config.runtime_api_address == Address("127.0.0.1", 9001)
    assert config.invoke_address == Address("0.0.0.0", 8080)
    assert config.workers is None
    assert config.init_timeout_s == 10.0
    assert function.base_env["AWS_LAMBDA_FUNCTION_NAME"] == "test_function"
    assert function.base_env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"


def test_timeout_zero_is_allowed(tmp_path, boot):
    # rie-behaviour.md §2.3: 0 makes every invoke time out at once; not a start-up error.
    assert run([boot], {"AWS_LAMBDA_FUNCTION_TIMEOUT": "0"}, cwd=tmp_path).function.timeout_s == 0


# --- flags, environment twins, precedence -----------------------------------------------------------------------


def test_go_flags_set_the_addresses_and_log_level(tmp_path, boot):
    config = run(
        [
            "--runtime-interface-emulator-address",
            "127.0.0.1:8081",
            boot,
            "--runtime-api-address",
            "127.0.0.1:19001",
            "--log-level=debug",
        ],
        cwd=tmp_path,
    )
    assert config.invoke_address == Address("127.0.0.1", 8081)
    assert config.runtime_api_address == Address("127.0.0.1", 19001)
    assert config.log_level == "DEBUG"
    assert config.function.command == (boot,)
    assert config.function.handler is None  # the flags were removed before the handler was chosen


def test_a_flag_after_the_handler_does_not_become_the_handler(tmp_path, boot):
    function = run([boot, "app.handler", "--log-level", "debug"], cwd=tmp_path).function
    assert function.command == (boot, "app.handler")
    assert function.handler == "app.handler"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {"PYRIE_RUNTIME_INTERFACE_EMULATOR_ADDRESS": "127.0.0.1:8090"},
            {"invoke_address": Address("127.0.0.1", 8090)},
        ),
        ({"PYRIE_RUNTIME_API_ADDRESS": "127.0.0.1:9010"}, {"runtime_api_address": Address("127.0.0.1", 9010)}),
        ({"PYRIE_WORKERS": "3"}, {"workers": 3}),
        ({"PYRIE_INIT_TIMEOUT": "2.5"}, {"init_timeout_s": 2.5}),
        ({"LOG_LEVEL": "error"}, {"log_level": "ERROR"}),
    ],
    ids=lambda value: next(iter(value)),
)
def test_environment_twins(tmp_path, boot, environ, expected):
    config = run([boot], environ, cwd=tmp_path)
    assert {name: getattr(config, name) for name in expected} == expected


@pytest.mark.parametrize(
    ("flags", "environ", "expected"),
    [
        (
            ["--runtime-interface-emulator-address", "127.0.0.1:8091"],
            {"PYRIE_RUNTIME_INTERFACE_EMULATOR_ADDRESS": "127.0.0.1:8090"},
            {"invoke_address": Address("127.0.0.1", 8091)},
        ),
        (
            ["--runtime-api-address", "127.0.0.1:9011"],
            {"PYRIE_RUNTIME_API_ADDRESS": "127.0.0.1:9010"},
            {"runtime_api_address": Address("127.0.0.1", 9011)},
        ),
        (["--workers", "4"], {"PYRIE_WORKERS": "3"}, {"workers": 4}),
        (["--init-timeout", "1"], {"PYRIE_INIT_TIMEOUT": "2.5"}, {"init_timeout_s": 1.0}),
        (["--log-level", "trace"], {"LOG_LEVEL": "error"}, {"log_level": "DEBUG"}),
    ],
    ids=lambda value: value[0] if isinstance(value, list) else None,
)
def test_flag_beats_environment(tmp_path, boot, flags, environ, expected):
    config = run([*flags, boot], environ, cwd=tmp_path)
    assert {name: getattr(config, name) for name in expected} == expected


def test_an_invalid_environment_twin_is_not_looked_at_when_the_flag_is_given(tmp_path, boot):
    config = run(["--runtime-api-address", "127.0.0.1:9001", boot], {"PYRIE_RUNTIME_API_ADDRESS": "junk"}, cwd=tmp_path)
    assert config.runtime_api_address == Address("127.0.0.1", 9001)


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        ("panic", "CRITICAL"),
        ("fatal", "CRITICAL"),
        ("error", "ERROR"),
        ("warn", "WARNING"),
        ("warning", "WARNING"),
        ("info", "INFO"),
        ("debug", "DEBUG"),
        ("trace", "DEBUG"),
        ("DEBUG", "DEBUG"),  # logrus.ParseLevel lower-cases
        ("Warn", "WARNING"),
    ],
)
def test_log_levels(tmp_path, boot, level, expected):
    assert run(["--log-level", level, boot], cwd=tmp_path).log_level == expected


def test_addresses_accept_ipv6_in_brackets_and_localhost(tmp_path, boot):
    config = run(
        ["--runtime-interface-emulator-address", "[::]:8080", "--runtime-api-address", "[::1]:9001", boot],
        cwd=tmp_path,
    )
    assert config.invoke_address == Address("::", 8080)
    assert str(config.invoke_address) == "[::]:8080"
    assert config.runtime_api_address == Address("::1", 9001)
    assert str(config.runtime_api_address) == "[::1]:9001"
    local = run(["--runtime-api-address", "localhost:9001", boot], cwd=tmp_path)
    assert local.runtime_api_address == Address("localhost", 9001)
    other_loopback = run(["--runtime-api-address", "127.0.0.2:9001", boot], cwd=tmp_path)
    assert other_loopback.runtime_api_address == Address("127.0.0.2", 9001)


def test_an_empty_host_means_every_interface(tmp_path, boot):
    assert run(["--runtime-interface-emulator-address", ":8080", boot], cwd=tmp_path).invoke_address == Address(
        "0.0.0.0", 8080
    )


def test_host_names_are_accepted_for_the_invoke_address(tmp_path, boot):
    config = run(["--runtime-interface-emulator-address", "my-host.example:80", boot], cwd=tmp_path)
    assert config.invoke_address == Address("my-host.example", 80)


# --- validation: one clear line each ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("abc", "'abc' is not HOST:PORT (for example 127.0.0.1:9001)"),
        ("host:", "'host:' is not HOST:PORT (for example 127.0.0.1:9001)"),
        (":99999", "':99999' is not HOST:PORT (for example 127.0.0.1:9001)"),
        ("1.2.3.4:x", "'1.2.3.4:x' is not HOST:PORT (for example 127.0.0.1:9001)"),
        ("1.2.3.4:-1", "'1.2.3.4:-1' is not HOST:PORT (for example 127.0.0.1:9001)"),
        ("", "'' is not HOST:PORT (for example 127.0.0.1:9001)"),
        ("::1:8080", "'::1:8080' is not HOST:PORT (write IPv6 hosts in brackets: [::1]:9001)"),
        ("[::1:8080", "'[::1:8080' is not HOST:PORT (write IPv6 hosts in brackets: [::1]:9001)"),
        ("bad host:80", "'bad host' in 'bad host:80' is not a host name or IP address"),
        ("a..b:80", "'a..b' in 'a..b:80' is not a host name or IP address"),
    ],
)
def test_malformed_invoke_address(tmp_path, boot, text, message):
    expected = f"--runtime-interface-emulator-address: {message}"  # the flag is named even when the env set it
    assert error_of(["--runtime-interface-emulator-address", text, boot], cwd=tmp_path) == expected
    if text:  # an empty environment value counts as unset
        assert error_of([boot], {"PYRIE_RUNTIME_INTERFACE_EMULATOR_ADDRESS": text}, cwd=tmp_path) == expected


def test_empty_brackets_mean_every_interface_as_in_go(tmp_path, boot):
    # net.SplitHostPort("[]:80") gives host "" and port "80".
    config = run(["--runtime-interface-emulator-address", "[]:80", boot], cwd=tmp_path)
    assert config.invoke_address == Address("0.0.0.0", 80)


@pytest.mark.parametrize("text", ["abc", "host:", ":99999", "1.2.3.4:x", "::1:9001"])
def test_malformed_runtime_api_address_names_the_flag(tmp_path, boot, text):
    assert error_of(["--runtime-api-address", text, boot], cwd=tmp_path).startswith(f"--runtime-api-address: {text!r}")


@pytest.mark.parametrize("text", ["0.0.0.0:9001", ":9001", "10.1.2.3:9001", "[::]:9001", "example.com:9001"])
def test_runtime_api_address_must_be_loopback(tmp_path, boot, text):
    shown = str(Address.parse(text, "x"))
    assert error_of(["--runtime-api-address", text, boot], cwd=tmp_path) == (
        f"--runtime-api-address: {shown} is not a loopback address; "
        "the Runtime API only listens on loopback (for example 127.0.0.1:9001)"
    )
    assert "is not a loopback address" in error_of([boot], {"PYRIE_RUNTIME_API_ADDRESS": text}, cwd=tmp_path)


@pytest.mark.parametrize("level", ["loud", "information", "0"])
def test_bad_log_level(tmp_path, boot, level):
    expected = f"--log-level: {level!r} is not one of panic, fatal, error, warn, warning, info, debug, trace"
    assert error_of(["--log-level", level, boot], cwd=tmp_path) == expected
    assert error_of([boot], {"LOG_LEVEL": level}, cwd=tmp_path) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "AWS_LAMBDA_FUNCTION_TIMEOUT: 'abc' is not a whole number"),
        ("1.5", "AWS_LAMBDA_FUNCTION_TIMEOUT: '1.5' is not a whole number"),
        ("-1", "AWS_LAMBDA_FUNCTION_TIMEOUT: '-1' is below the minimum of 0"),
        ("3s", "AWS_LAMBDA_FUNCTION_TIMEOUT: '3s' is not a whole number"),
    ],
)
def test_bad_function_timeout(tmp_path, boot, value, message):
    assert error_of([boot], {"AWS_LAMBDA_FUNCTION_TIMEOUT": value}, cwd=tmp_path) == message


def test_function_timeout_with_digit_grouping_is_refused(tmp_path, boot):
    with pytest.raises(ConfigError):
        run([boot], {"AWS_LAMBDA_FUNCTION_TIMEOUT": "1_0"}, cwd=tmp_path)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE: 'abc' is not a whole number"),
        ("128.5", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '128.5' is not a whole number"),
        ("0", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '0' is below the minimum of 1"),
        ("-128", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '-128' is below the minimum of 1"),
    ],
)
def test_bad_memory_size(tmp_path, boot, value, message):
    assert error_of([boot], {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": value}, cwd=tmp_path) == message


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--workers", "0"], "--workers: '0' is below the minimum of 1"),
        (["--workers", "two"], "--workers: 'two' is not a whole number"),
        (["--init-timeout", "abc"], "--init-timeout: 'abc' is not a number"),
        (["--init-timeout", "0"], "--init-timeout: '0' is below the minimum of 0.001"),
        (["--init-timeout", "-5"], "--init-timeout: '-5' is below the minimum of 0.001"),
    ],
)
def test_bad_pyrie_numbers(tmp_path, boot, argv, message):
    assert error_of([*argv, boot], cwd=tmp_path) == message


def test_init_timeout_nan_is_refused(tmp_path, boot):
    with pytest.raises(ConfigError):
        run(["--init-timeout", "nan", boot], cwd=tmp_path)


def test_missing_bootstrap(tmp_path):
    missing = str(tmp_path / "nope" / "bootstrap")
    assert error_of([missing, "app.handler"], cwd=tmp_path) == f"bootstrap {missing!r} not found or not executable"


def test_bootstrap_not_on_path(tmp_path):
    assert (
        error_of(["no-such-program-xyz", "-v"], {"PATH": str(tmp_path)}, cwd=tmp_path)
        == "bootstrap 'no-such-program-xyz' not found or not executable"
    )


def test_non_executable_bootstrap_file(tmp_path):
    script = make_executable(tmp_path / "bootstrap", mode=0o644)
    assert error_of([script], cwd=tmp_path) == f"bootstrap {script!r} not found or not executable"


def test_a_directory_is_not_a_bootstrap(tmp_path):
    (tmp_path / "dir").mkdir()
    directory = str(tmp_path / "dir")
    assert error_of([directory], cwd=tmp_path) == f"bootstrap {directory!r} not found or not executable"


def test_missing_working_directory(tmp_path, boot):
    missing = tmp_path / "gone"
    assert error_of([boot], cwd=missing) == f"the working directory {missing} does not exist"


def test_unknown_option_before_the_bootstrap_is_the_bootstrap(tmp_path, boot):
    # As the Go emulator: "--foo" is kept in place and so becomes the command, which does not exist.
    assert error_of(["--foo", boot], {"PATH": str(tmp_path)}, cwd=tmp_path) == (
        "bootstrap '--foo' not found or not executable"
    )


# --- bootstrap and handler resolution (rie-behaviour.md §2.2) ---------------------------------------------------


def test_command_found_through_path(tmp_path):
    make_executable(tmp_path / "bin" / "my-runtime")
    function = run(["my-runtime", "--flag", "app.handler"], {"PATH": str(tmp_path / "bin")}, cwd=tmp_path).function
    assert function.command == ("my-runtime", "--flag", "app.handler")  # verbatim, as exec gets it
    assert function.handler == "app.handler"


def test_single_word_command_has_no_handler(tmp_path, boot):
    function = run([boot], cwd=tmp_path).function
    assert function.handler is None
    assert "_HANDLER" not in function.base_env


@pytest.mark.parametrize(
    ("tail", "handler"),
    [
        (["app.handler"], "app.handler"),
        (["-u", "x.py", "lambda_function.lambda_handler"], "lambda_function.lambda_handler"),
        (["-h"], "-h"),
    ],
)
def test_two_or_more_words_the_last_is_the_handler(tmp_path, boot, tail, handler):
    function = run([boot, *tail], cwd=tmp_path).function
    assert function.command == (boot, *tail)
    assert function.cwd == str(tmp_path)
    assert function.handler == handler
    assert function.base_env["_HANDLER"] == handler


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"AWS_LAMBDA_FUNCTION_HANDLER": "a.fn", "_HANDLER": "b.fn"}, "a.fn"),
        ({"_HANDLER": "b.fn"}, "b.fn"),
        ({"AWS_LAMBDA_FUNCTION_HANDLER": "", "_HANDLER": "b.fn"}, "b.fn"),
        ({"AWS_LAMBDA_FUNCTION_HANDLER": "a.fn", "_HANDLER": ""}, "a.fn"),
        ({"AWS_LAMBDA_FUNCTION_HANDLER": "", "_HANDLER": ""}, "cli.fn"),
        ({}, "cli.fn"),
    ],
)
def test_handler_precedence(tmp_path, boot, environ, expected):
    function = run([boot, "cli.fn"], environ, cwd=tmp_path).function
    assert function.handler == expected
    assert function.base_env["_HANDLER"] == expected
    assert function.command == (boot, "cli.fn")  # the command itself is never rewritten


def test_environment_handler_with_a_single_word_command(tmp_path, boot):
    assert run([boot], {"_HANDLER": "env.fn"}, cwd=tmp_path).function.handler == "env.fn"


def test_no_command_runs_the_first_default_bootstrap_in_var_task(tmp_path, task_root):
    opt = make_executable(task_root["opt"] / "bootstrap")
    make_executable(task_root["var/runtime"] / "bootstrap")
    function = run([], cwd=tmp_path).function
    assert function.command == (opt,)
    assert function.cwd == str(task_root["var/task"])
    assert function.handler is None
    assert "_HANDLER" not in function.base_env


def test_no_command_prefers_var_task_bootstrap(tmp_path, task_root):
    task = make_executable(task_root["var/task"] / "bootstrap")
    make_executable(task_root["opt"] / "bootstrap")
    assert run([], cwd=tmp_path).function.command == (task,)


def test_no_command_falls_back_to_var_runtime_bootstrap(tmp_path, task_root):
    runtime = make_executable(task_root["var/runtime"] / "bootstrap")
    assert run([], cwd=tmp_path).function.command == (runtime,)


def test_no_command_skips_a_bootstrap_that_is_a_directory(tmp_path, task_root):
    (task_root["var/task"] / "bootstrap").mkdir()
    runtime = make_executable(task_root["var/runtime"] / "bootstrap")
    assert run([], cwd=tmp_path).function.command == (runtime,)


def test_no_command_with_flags_only(tmp_path, task_root):
    task = make_executable(task_root["var/task"] / "bootstrap")
    config = run(["--log-level", "debug"], cwd=tmp_path)
    assert config.function.command == (task,)
    assert config.log_level == "DEBUG"


def test_no_command_takes_the_handler_from_the_environment(tmp_path, task_root):
    make_executable(task_root["var/task"] / "bootstrap")
    function = run([], {"AWS_LAMBDA_FUNCTION_HANDLER": "a.fn", "_HANDLER": "b.fn"}, cwd=tmp_path).function
    assert function.handler == "a.fn"
    assert function.base_env["_HANDLER"] == "a.fn"


def test_no_command_and_a_non_executable_default_bootstrap(tmp_path, task_root):
    task = make_executable(task_root["var/task"] / "bootstrap", mode=0o644)
    assert error_of([], cwd=tmp_path) == f"bootstrap {task!r} not found or not executable"


def test_no_command_no_bootstrap_no_handler_is_an_error(tmp_path, task_root):
    assert error_of([], cwd=tmp_path) == (
        "no bootstrap: none of " + ", ".join(cli.DEFAULT_BOOTSTRAPS) + " exists; "
        "give a bootstrap command or a handler (for example: pyrie app.handler)"
    )


def test_no_command_no_bootstrap_handler_in_environment_runs_the_runtime_client(tmp_path, task_root):
    function = run([], {"_HANDLER": "app.handler"}, cwd=tmp_path).function
    assert function.command == RUNTIME_CLIENT
    assert function.cwd == str(tmp_path)
    assert function.handler == "app.handler"
    assert function.base_env["_HANDLER"] == "app.handler"


def test_runtime_client_runs_in_lambda_task_root_when_set(tmp_path, task_root):
    code = tmp_path / "code"
    code.mkdir()
    function = run([], {"_HANDLER": "app.handler", "LAMBDA_TASK_ROOT": str(code)}, cwd=tmp_path).function
    assert function.command == RUNTIME_CLIENT
    assert function.cwd == str(code)


@pytest.mark.parametrize("word", ["app.handler", "lambda_function.lambda_handler", "src/app.main", "pkg.mod.Handler"])
def test_a_single_handler_word_runs_the_runtime_client(tmp_path, word):
    function = run([word], {"PATH": str(tmp_path)}, cwd=tmp_path).function
    assert function.command == (*RUNTIME_CLIENT, word)
    assert function.command[1:5] == ("-m", "pyrie", "--pyrie-own-program", "pyrie_runtime_client")
    assert function.cwd == str(tmp_path)
    assert function.handler == word
    assert function.base_env["_HANDLER"] == word


def test_a_single_handler_word_with_flags_around_it(tmp_path):
    config = run(["--log-level", "debug", "app.handler", "--workers", "2"], {"PATH": str(tmp_path)}, cwd=tmp_path)
    assert config.function.command == (*RUNTIME_CLIENT, "app.handler")
    assert config.workers == 2


def test_the_environment_handler_wins_over_a_single_handler_word(tmp_path):
    function = run(["app.handler"], {"PATH": str(tmp_path), "_HANDLER": "other.fn"}, cwd=tmp_path).function
    assert function.command == (*RUNTIME_CLIENT, "other.fn")  # the runtime client runs _HANDLER
    assert function.handler == "other.fn"


def test_a_single_handler_shaped_word_that_is_an_executable_is_run(tmp_path):
    make_executable(tmp_path / "bin" / "serve.sh")
    function = run(["serve.sh"], {"PATH": str(tmp_path / "bin")}, cwd=tmp_path).function
    assert function.command == ("serve.sh",)
    assert function.handler is None


@pytest.mark.parametrize("word", ["handler", "app.", ".handler", "app.handler()", "1app.handler"])
def test_a_single_word_that_is_not_handler_shaped_must_be_an_executable(tmp_path, word):
    assert error_of([word], {"PATH": str(tmp_path)}, cwd=tmp_path) == f"bootstrap {word!r} not found or not executable"


# --- the runtime environment (rie-behaviour.md §3.2) ------------------------------------------------------------


def test_runtime_environment_with_an_empty_environment(tmp_path, boot):
    function = run([boot, "my.handler"], {}, cwd=tmp_path).function
    assert function.runtime_env(Address("127.0.0.1", 19001)) == {
        "AWS_LAMBDA_FUNCTION_NAME": "test_function",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/Functions",
        "AWS_LAMBDA_LOG_STREAM_NAME": "$LATEST",
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
        "AWS_SESSION_TOKEN": "",
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:19001",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "3008",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "_HANDLER": "my.handler",
    }


def test_runtime_environment_passes_the_whole_environment_through(tmp_path, boot):
    environ = {
        "PATH": "/usr/bin:/bin",
        "HOME": "/root",
        "MyEnv": "4=4",
        "EMPTY": "",
        "_LAMBDA_SERVER_PORT": "1",
        "AWS_LAMBDA_FUNCTION_TIMEOUT": "3",
        "LAMBDA_TASK_ROOT": "/var/task",
        "AWS_REGION": "eu-west-1",
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
    }
    env = run([boot], environ, cwd=tmp_path).function.runtime_env(Address("127.0.0.1", 9001))
    for name, value in environ.items():
        assert env[name] == value
    assert env["MyEnv"] == "4=4"


def test_credentials_pass_through_when_set(tmp_path, boot):
    environ = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "token"}
    env = run([boot], environ, cwd=tmp_path).function.base_env
    assert {name: env[name] for name in environ} == environ


def test_credentials_are_present_and_empty_when_unset(tmp_path, boot):
    env = run([boot], {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE"}, cwd=tmp_path).function.base_env
    assert env["AWS_ACCESS_KEY_ID"] == "AKIDEXAMPLE"
    assert env["AWS_SECRET_ACCESS_KEY"] == ""
    assert env["AWS_SESSION_TOKEN"] == ""


def test_handler_is_set_only_when_there_is_one(tmp_path, boot):
    assert "_HANDLER" not in run([boot], {}, cwd=tmp_path).function.base_env
    assert run([boot, "x.y"], {}, cwd=tmp_path).function.base_env["_HANDLER"] == "x.y"


def test_handler_from_aws_lambda_function_handler_becomes_underscore_handler(tmp_path, boot):
    env = run([boot, "cli.fn"], {"AWS_LAMBDA_FUNCTION_HANDLER": "a.fn", "_HANDLER": "b.fn"}, cwd=tmp_path)
    assert env.function.base_env["_HANDLER"] == "a.fn"
    assert env.function.base_env["AWS_LAMBDA_FUNCTION_HANDLER"] == "a.fn"


def test_name_and_version_overrides_reach_the_runtime(tmp_path, boot):
    environ = {"AWS_LAMBDA_FUNCTION_NAME": "orders", "AWS_LAMBDA_FUNCTION_VERSION": "12"}
    env = run([boot], environ, cwd=tmp_path).function.base_env
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "orders"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "12"
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"] == "$LATEST"  # a default of its own, not the version


def test_empty_name_and_version_get_their_defaults_in_the_runtime_environment(tmp_path, boot):
    environ = {"AWS_LAMBDA_FUNCTION_NAME": "", "AWS_LAMBDA_FUNCTION_VERSION": ""}
    env = run([boot], environ, cwd=tmp_path).function.base_env
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "test_function"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"


def test_log_group_and_stream_from_the_environment_win_over_the_defaults(tmp_path, boot):
    environ = {"AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/orders", "AWS_LAMBDA_LOG_STREAM_NAME": "s"}
    env = run([boot], environ, cwd=tmp_path).function.base_env
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/orders"
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"] == "s"


def test_runtime_env_sets_the_runtime_api_address_over_the_environment(tmp_path, boot):
    function = run([boot], {"AWS_LAMBDA_RUNTIME_API": "10.0.0.1:1"}, cwd=tmp_path).function
    assert function.runtime_env(Address("127.0.0.1", 9005))["AWS_LAMBDA_RUNTIME_API"] == "127.0.0.1:9005"
    assert function.runtime_env(Address("::1", 9006))["AWS_LAMBDA_RUNTIME_API"] == "[::1]:9006"
    assert "AWS_LAMBDA_RUNTIME_API" not in run([boot], {}, cwd=tmp_path).function.base_env


def test_runtime_env_is_a_fresh_copy_each_time(tmp_path, boot):
    function = run([boot], {}, cwd=tmp_path).function
    first = function.runtime_env(Address("127.0.0.1", 9001))
    first["X"] = "1"
    assert "X" not in function.runtime_env(Address("127.0.0.1", 9002))
    assert "X" not in function.base_env
    with pytest.raises(TypeError):
        function.base_env["X"] = "1"  # type: ignore[index]


def test_parse_does_not_read_the_real_environment(tmp_path, boot, monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "from-os-environ")
    monkeypatch.setenv("PYRIE_WORKERS", "0")
    config = run([boot], {}, cwd=tmp_path)
    assert config.function.name == "test_function"
    assert "from-os-environ" not in config.function.base_env.values()


# --- the front end's gunicorn and the split deployment ------------------------------------------------------------

TOKEN = "0123456789abcdef-token"


def test_gunicorn_config_is_resolved_against_the_working_directory(tmp_path, boot):
    (tmp_path / "gunicorn.conf.py").write_text("workers = 3\n")
    assert run(["--gunicorn-config", "gunicorn.conf.py", boot], cwd=tmp_path).gunicorn_config == str(
        tmp_path / "gunicorn.conf.py"
    )
    from_env = run([boot], {"PYRIE_GUNICORN_CONFIG": str(tmp_path / "gunicorn.conf.py")}, cwd=tmp_path)
    assert from_env.gunicorn_config == str(tmp_path / "gunicorn.conf.py")


@pytest.mark.parametrize("path", ["missing.conf.py", "."])
def test_a_gunicorn_config_that_is_no_file_stops_pyrie(tmp_path, boot, path):
    message = error_of(["--gunicorn-config", path, boot], cwd=tmp_path)
    assert message == f"--gunicorn-config: {os.path.join(str(tmp_path), path)} is not a file"


def test_supervisor_address_with_its_token(tmp_path, boot):
    config = run(["--supervisor-address", "0.0.0.0:9100", boot], {"PYRIE_SUPERVISOR_TOKEN": TOKEN}, cwd=tmp_path)
    assert config.supervisor_address == Address("0.0.0.0", 9100)
    assert config.supervisor_token == TOKEN
    assert TOKEN not in repr(config)
    from_env = run(
        [boot], {"PYRIE_SUPERVISOR_ADDRESS": "127.0.0.1:9100", "PYRIE_SUPERVISOR_TOKEN": TOKEN}, cwd=tmp_path
    )
    assert from_env.supervisor_address == Address("127.0.0.1", 9100)


@pytest.mark.parametrize(
    ("address", "token", "problem"),
    [("0.0.0.0:9100", None, "is not set"), ("127.0.0.1:9100", "", "is not set"), ("[::]:9100", "short", "shorter")],
)
def test_supervisor_address_without_a_good_token_stops_pyrie(tmp_path, boot, address, token, problem):
    environ = {} if token is None else {"PYRIE_SUPERVISOR_TOKEN": token}
    message = error_of(["--supervisor-address", address, boot], environ, cwd=tmp_path)
    assert message.startswith("--supervisor-address needs PYRIE_SUPERVISOR_TOKEN")
    assert problem in message


def test_a_malformed_supervisor_address_stops_pyrie(tmp_path, boot):
    message = error_of(["--supervisor-address", "9100", boot], {"PYRIE_SUPERVISOR_TOKEN": TOKEN}, cwd=tmp_path)
    assert message == "--supervisor-address: '9100' is not HOST:PORT (for example 127.0.0.1:9001)"


def test_the_token_is_kept_from_the_runtime(tmp_path, boot):
    environ = {"PYRIE_SUPERVISOR_TOKEN": TOKEN, "PYRIE_SUPERVISOR_ADDRESS": "127.0.0.1:9100", "OTHER": "kept"}
    function = run([boot], environ, cwd=tmp_path).function
    assert "PYRIE_SUPERVISOR_TOKEN" not in function.base_env
    assert function.base_env["OTHER"] == "kept"
