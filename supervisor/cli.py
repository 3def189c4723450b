"""The command line: a drop-in for ``aws-lambda-rie``'s, plus pyrie's own options.

Rules (rie-behaviour.md §2): the Go emulator's flags are recognised anywhere in argv, also after the bootstrap
command, and removed from it; unknown options stay in the bootstrap's argv, in place. pyrie's own options follow the
same rule and each has a ``PYRIE_*`` environment twin. ``-h``/``--help`` is pyrie's only before the bootstrap
command (after it, it belongs to the bootstrap); a literal ``--`` ends pyrie's options.

Bootstrap resolution (rie-behaviour.md §2.2): no command → the first of /var/task/bootstrap, /opt/bootstrap,
/var/runtime/bootstrap, run in /var/task; a command → run as given in the current directory, its last word the
handler when it has two or more words. pyrie adds: a single word that is no executable but looks like a handler
(``app.handler``), or no command and no bootstrap file but a handler in the environment, runs pyrie's own Python
runtime client, so ``pyrie app.handler`` needs nothing else installed.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pyrie_core import defaults
from pyrie_core.address import Address, InvalidAddress
from pyrie_core.frontend_contract import (
    FUNCTION_TIMEOUT_ENV,
    INIT_TIMEOUT_ENV,
    INVOKE_ADDRESS_ENV,
    REQUEST_READ_TIMEOUT_ENV,
    SUPERVISOR_ADDRESS_ENV,
    SUPERVISOR_TOKEN_ENV,
    USER_CONFIG_ENV,
)
from pyrie_core.own_programs import own_program_command
from supervisor.config import Config, ConfigError, FunctionConfig, PoolConfig, SnapStartConfig, frozen_env
from supervisor.durable.settings import durable_config, durable_runtime_env

__all__ = ["OPTIONS", "HelpRequested", "Option", "help_text", "parse"]

DEFAULT_BOOTSTRAPS: Final = ("/var/task/bootstrap", "/opt/bootstrap", "/var/runtime/bootstrap")
DEFAULT_TASK_ROOT: Final = "/var/task"
# pyrie's own runtime client, for a handler given without a bootstrap (``pyrie app.handler``).
RUNTIME_CLIENT: Final = own_program_command("pyrie_runtime_client")
_NUMBER_SHAPE: Final[dict[Any, re.Pattern[str]]] = {
    int: re.compile(r"[+-]?[0-9]+"),
    float: re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?"),
}
MIN_TOKEN_LENGTH: Final = 16
# Lambda Managed Instances: pyrie is told as Lambda and the Go emulator are, through its environment.
MAX_CONCURRENCY_ENV: Final = "AWS_LAMBDA_MAX_CONCURRENCY"
INITIALIZATION_TYPE_ENV: Final = "AWS_LAMBDA_INITIALIZATION_TYPE"
# Managed Instances and SnapStart: init may take up to the larger of this and the function's timeout.
LONG_INIT_S: Final = 130
CREDENTIAL_ENV: Final = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
# SnapStart's credentials endpoint hands out pyrie's own credentials, or these when pyrie has none.
DUMMY_CREDENTIALS: Final = ("ASIAPYRIEDUMMYACCESS", "pyrie-dummy-secret-access-key", "pyrie-dummy-session-token")
_HANDLER_SHAPE: Final = re.compile(r"^[A-Za-z_][\w/.-]*\.[A-Za-z_]\w*$")
_LOG_LEVELS: Final = {
    "panic": "CRITICAL",
    "fatal": "CRITICAL",
    "error": "ERROR",
    "warn": "WARNING",
    "warning": "WARNING",
    "info": "INFO",
    "debug": "DEBUG",
    "trace": "DEBUG",
}


class HelpRequested(Exception):
    """``--help`` was given; the caller prints ``help_text()``."""


@dataclass(frozen=True, slots=True)
class Option:
    flag: str
    env: str | None  # the environment twin (None: no twin)
    default: str | None
    help: str
    metavar: str = ""  # empty: a boolean switch that takes no value
    go_flag: bool = False  # one of the Go emulator's flags

    @property
    def takes_value(self) -> bool:
        return bool(self.metavar)


OPTIONS: Final = (
    Option(
        "--runtime-interface-emulator-address",
        INVOKE_ADDRESS_ENV,
        defaults.INVOKE_ADDRESS,
        "where the Invoke API listens",
        "HOST:PORT",
        go_flag=True,
    ),
    Option(
        "--runtime-api-address",
        "PYRIE_RUNTIME_API_ADDRESS",
        defaults.RUNTIME_API_ADDRESS,
        "where the Runtime API listens (loopback only); the runtime gets it as AWS_LAMBDA_RUNTIME_API",
        "HOST:PORT",
        go_flag=True,
    ),
    Option(
        "--log-level",
        "LOG_LEVEL",
        defaults.LOG_LEVEL,
        "pyrie's own log level: panic, fatal, error, warn, info, debug or trace",
        "LEVEL",
        go_flag=True,
    ),
    Option(
        "--enable-init-caching",
        None,
        None,
        "SnapStart: the runtime gets AWS_LAMBDA_INITIALIZATION_TYPE=snap-start, runs its before-snapshot hooks at the "
        "end of init and its after-restore hooks when its environment is restored for its first invoke; credentials "
        "come from the container credentials endpoint on the Runtime API (not with AWS_LAMBDA_MAX_CONCURRENCY)",
        go_flag=True,
    ),
    Option(
        "--workers",
        "PYRIE_WORKERS",
        None,
        f"front-end (gunicorn) worker processes; default: the gunicorn configuration's, else "
        f"{defaults.FRONTEND_WORKERS}",
        "N",
    ),
    Option(
        "--gunicorn-config",
        USER_CONFIG_ENV,
        None,
        "a gunicorn configuration file for the front end, applied over pyrie's defaults (GUNICORN_CMD_ARGS is "
        "applied over both); for example deploy/gunicorn.conf.py",
        "PATH",
    ),
    Option(
        "--supervisor-address",
        SUPERVISOR_ADDRESS_ENV,
        None,
        f"also take front-end connections over TCP here, for a front end deployed on its own; requires "
        f"{SUPERVISOR_TOKEN_ENV} (at least {MIN_TOKEN_LENGTH} characters) in the environment",
        "HOST:PORT",
    ),
    Option(
        "--init-timeout",
        INIT_TIMEOUT_ENV,
        str(defaults.INIT_TIMEOUT_S),
        "seconds a runtime may take to initialise (reach its first /next), as Lambda's INIT phase limit",
        "SECONDS",
    ),
    Option(
        "--max-concurrency",
        "PYRIE_MAX_CONCURRENCY",
        str(defaults.MAX_CONCURRENCY),
        "execution environments that may run at once; a synchronous invoke beyond them is throttled (429)",
        "N",
    ),
    Option(
        "--init-eagerly",
        "PYRIE_INIT_EAGERLY",
        None,
        "start --min-environments environments at start-up and keep that many warm, instead of on demand",
    ),
    Option(
        "--min-environments",
        "PYRIE_MIN_ENVIRONMENTS",
        str(defaults.MIN_ENVIRONMENTS),
        "with --init-eagerly: how many environments to keep warm",
        "N",
    ),
    Option(
        "--idle-timeout",
        "PYRIE_IDLE_TIMEOUT",
        str(defaults.IDLE_TIMEOUT_S),
        "seconds an idle environment stays warm before it is retired; 0 keeps them",
        "SECONDS",
    ),
    Option(
        "--max-queued-events",
        "PYRIE_MAX_QUEUED_EVENTS",
        str(defaults.MAX_QUEUED_EVENTS),
        "Event (asynchronous) invokes that may wait for an environment; beyond them Event invokes get 429",
        "N",
    ),
    Option(
        "--max-queued-event-bytes",
        "PYRIE_MAX_QUEUED_EVENT_BYTES",
        str(defaults.MAX_QUEUED_EVENT_BYTES),
        "bytes of payload the waiting Event invokes may hold together; beyond them Event invokes get 429",
        "BYTES",
    ),
    Option(
        "--tenant-isolation",
        "PYRIE_TENANT_ISOLATION",
        None,
        "tenant isolation (Lambda's TenantIsolationMode PER_TENANT): every invoke must carry X-Amz-Tenant-Id, and an "
        "environment serves one tenant only",
    ),
    Option(
        "--watch",
        "PYRIE_WATCH",
        None,
        "restart environments when code changes under the task root (or --watch=PATH), without restarting pyrie",
    ),
    Option(
        "--extensions-dir",
        "PYRIE_EXTENSIONS_DIR",
        defaults.EXTENSIONS_DIR,
        "external extensions: each file of DIR starts before the runtime and must register (none if DIR is missing)",
        "DIR",
    ),
    Option(
        "--function-url-address",
        "PYRIE_FUNCTION_URL_ADDRESS",
        None,
        "where Function URLs listen (off when not given): every method and path there invokes the function with a "
        "payload-format-2.0 event",
        "HOST:PORT",
    ),
    Option(
        "--durable-store",
        "PYRIE_DURABLE_STORE",
        None,
        "a durable function's executions are kept in this SQLite file, so a restarted pyrie resumes their waits, "
        "retries and callbacks (default: in memory)",
        "PATH",
    ),
)
_BY_FLAG: Final = {option.flag: option for option in OPTIONS}

_ENVIRONMENT_HELP: Final = f"""\
Function settings, read from the environment as the Go emulator does:
  AWS_LAMBDA_FUNCTION_NAME         function name (default {defaults.FUNCTION_NAME})
  AWS_LAMBDA_FUNCTION_VERSION      version (default {defaults.FUNCTION_VERSION})
  AWS_LAMBDA_FUNCTION_TIMEOUT      timeout in whole seconds (default {defaults.FUNCTION_TIMEOUT_S})
  AWS_LAMBDA_FUNCTION_MEMORY_SIZE  memory size in MB (default {defaults.FUNCTION_MEMORY_MB})
  AWS_LAMBDA_FUNCTION_HANDLER, _HANDLER
                                   the handler, ahead of the last word of the bootstrap command
  AWS_LAMBDA_LOG_FORMAT            Text (default) or JSON: platform lines as Lambda's JSON records
  AWS_LAMBDA_MAX_CONCURRENCY       Lambda Managed Instances: each environment takes up to this many invokes at once
  AWS_LAMBDA_DURABLE_EXECUTION_TIMEOUT
                                   seconds: makes the function durable, pyrie plays the durable execution service
  AWS_LAMBDA_DURABLE_RETENTION_PERIOD_IN_DAYS
                                   days a closed durable execution stays readable (default 14)

pyrie's own, read from the environment only:
  PYRIE_SUPERVISOR_TOKEN           the secret a front end must present on --supervisor-address
  PYRIE_REQUEST_READ_TIMEOUT       seconds a client has, from a request's first byte, to send all of it
                                   (default {defaults.REQUEST_READ_TIMEOUT_S:g})
  GUNICORN_CMD_ARGS                gunicorn options for the front end, over the configuration file
"""


def help_text() -> str:
    lines = [
        "usage: pyrie [OPTIONS] [BOOTSTRAP [ARGS...]]",
        "       pyrie [OPTIONS] MODULE.FUNCTION",
        "",
        "A Lambda Runtime Interface Emulator that streams. Runs BOOTSTRAP (or, given only a handler such as",
        "app.handler, pyrie's own Python runtime client) as a Lambda runtime and serves the Lambda Invoke API.",
        "With no BOOTSTRAP it runs the first of " + ", ".join(DEFAULT_BOOTSTRAPS) + ".",
        "Options are recognised anywhere on the line, also after BOOTSTRAP; anything else belongs to BOOTSTRAP.",
        "",
        "options:",
        "  -h, --help  show this help and exit",
    ]
    for option in OPTIONS:
        head = f"  {option.flag} {option.metavar}".rstrip()
        details = [option.help]
        if option.default is not None:
            details.append(f"default {option.default}")
        if option.env:
            details.append(f"env {option.env}")
        lines.append(head)
        lines.append("      " + "; ".join(details))
    lines += ["", _ENVIRONMENT_HELP]
    return "\n".join(lines)


def split_argv(argv: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """Separate pyrie's options (flag -> value; "true" for switches) from the bootstrap command."""
    values: dict[str, str] = {}
    command: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            command.extend(args[i:])
            break
        if arg in ("-h", "--help") and not command:
            raise HelpRequested
        flag, eq, inline = arg.partition("=")
        option = _BY_FLAG.get(flag)
        if option is None:
            command.append(arg)
        elif not option.takes_value:
            values[flag] = inline if eq else "true"
        elif eq:
            values[flag] = inline
        elif i < len(args):
            values[flag] = args[i]
            i += 1
        else:
            raise ConfigError(f"{flag} needs a value ({option.metavar})")
    return values, command


def parse(argv: Sequence[str], environ: Mapping[str, str] | None = None, cwd: str | None = None) -> Config:
    """Build the configuration from argv (without the program name) and the environment."""
    env = dict(os.environ if environ is None else environ)
    values, command = split_argv(argv)

    def value(flag: str) -> str | None:
        option = _BY_FLAG[flag]
        if flag in values:
            return values[flag]
        if option.env and env.get(option.env):
            return env[option.env]
        return option.default

    invoke_address = _address(
        _required(value("--runtime-interface-emulator-address")), "--runtime-interface-emulator-address"
    )
    url_text = value("--function-url-address")
    function_url_address = _address(url_text, "--function-url-address") if url_text else None
    runtime_api_address = _address(_required(value("--runtime-api-address")), "--runtime-api-address")
    if not runtime_api_address.is_loopback:
        raise ConfigError(
            f"--runtime-api-address: {runtime_api_address} is not a loopback address; "
            "the Runtime API only listens on loopback (for example 127.0.0.1:9001)"
        )
    level_name = _required(value("--log-level"))
    log_level = _LOG_LEVELS.get(level_name.lower())
    if log_level is None:
        raise ConfigError(f"--log-level: {level_name!r} is not one of {', '.join(_LOG_LEVELS)}")
    workers_text = value("--workers")
    workers = _number(workers_text, "--workers", int, minimum=1) if workers_text else None
    init_caching = _switch(value("--enable-init-caching") or "false", "--enable-init-caching")
    function = _function_config(command, env, cwd or os.getcwd(), init_caching)
    init_timeout = _number(_required(value("--init-timeout")), "--init-timeout", float, minimum=0.001)
    long_init = function.concurrency is not None or function.snapstart is not None
    if long_init and "--init-timeout" not in values and not env.get(INIT_TIMEOUT_ENV):
        # Managed Instances, and SnapStart's init with its before-snapshot hooks: init may take up to the larger of
        # 130 s and the function's timeout
        init_timeout = float(max(LONG_INIT_S, function.timeout_s))
    max_concurrency = _number(_required(value("--max-concurrency")), "--max-concurrency", int, minimum=1)
    min_environments = _number(_required(value("--min-environments")), "--min-environments", int, minimum=0)
    if min_environments > max_concurrency:
        raise ConfigError(f"--min-environments: {min_environments} is more than --max-concurrency ({max_concurrency})")
    watch = value("--watch")
    watch_path: str | None = None
    if watch is not None and _switch(watch, "--watch", allow_value=True):
        watch_path = os.path.abspath(os.path.join(function.cwd, watch)) if watch != "true" else function.cwd
        if not os.path.exists(watch_path):
            raise ConfigError(f"--watch: {watch_path} does not exist")
    gunicorn_config = _gunicorn_config(value("--gunicorn-config"), cwd or os.getcwd())
    read_timeout_text = env.get(REQUEST_READ_TIMEOUT_ENV) or str(defaults.REQUEST_READ_TIMEOUT_S)
    request_read_timeout = _number(read_timeout_text, REQUEST_READ_TIMEOUT_ENV, float, minimum=0.001)
    supervisor_address, supervisor_token = _supervisor_listener(value("--supervisor-address"), env)
    durable = durable_config(env, value("--durable-store"), cwd or os.getcwd())
    if durable is not None:
        durable_env = durable_runtime_env(function.base_env, env)
        if function.snapstart is not None:  # SnapStart's credentials come from its endpoint, not these variables
            for credential in CREDENTIAL_ENV:
                durable_env.pop(credential, None)
        function = dataclasses.replace(function, base_env=frozen_env(durable_env))

    return Config(
        function=function,
        invoke_address=invoke_address,
        runtime_api_address=runtime_api_address,
        log_level=log_level,
        workers=workers,
        init_timeout_s=init_timeout,
        pool=PoolConfig(
            max_concurrency=max_concurrency,
            init_eagerly=_switch(value("--init-eagerly") or "false", "--init-eagerly"),
            min_environments=min_environments,
            idle_timeout_s=_number(_required(value("--idle-timeout")), "--idle-timeout", float, minimum=0),
            max_queued_events=_number(_required(value("--max-queued-events")), "--max-queued-events", int, 0),
            max_queued_event_bytes=_number(
                _required(value("--max-queued-event-bytes")), "--max-queued-event-bytes", int, minimum=0
            ),
            watch_path=watch_path,
            tenant_isolation=_switch(value("--tenant-isolation") or "false", "--tenant-isolation"),
        ),
        extensions_dir=_required(value("--extensions-dir")),
        function_url_address=function_url_address,
        gunicorn_config=gunicorn_config,
        request_read_timeout_s=request_read_timeout,
        supervisor_address=supervisor_address,
        supervisor_token=supervisor_token,
        durable=durable,
    )


_TRUE: Final = frozenset({"true", "1", "yes", "on"})
_FALSE: Final = frozenset({"false", "0", "no", "off"})


def _switch(text: str, what: str, allow_value: bool = False) -> bool:
    """A switch's value (``--flag``, ``--flag=false``, ``PYRIE_FLAG=1``); with ``allow_value`` any other text is a
    value for the switch (``--watch=src``) and counts as on."""
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    if allow_value and text.strip():
        return True
    raise ConfigError(f"{what}: {text!r} is not true or false")


def _gunicorn_config(path: str | None, cwd: str) -> str | None:
    if not path:
        return None
    path = os.path.join(cwd, path)
    if not os.path.isfile(path):
        raise ConfigError(f"--gunicorn-config: {path} is not a file")
    return path


def _supervisor_listener(text: str | None, env: Mapping[str, str]) -> tuple[Address | None, str | None]:
    """The TCP address of the split deployment's pipe and its token, both checked; (None, None) when it is off."""
    if not text:
        return None, None
    address = _address(text, "--supervisor-address")
    token = env.get(SUPERVISOR_TOKEN_ENV, "")
    if len(token) < MIN_TOKEN_LENGTH:
        problem = "is not set" if not token else f"is shorter than {MIN_TOKEN_LENGTH} characters"
        raise ConfigError(
            f"--supervisor-address needs {SUPERVISOR_TOKEN_ENV} to keep strangers out, and it {problem} "
            "(make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(24))')"
        )
    return address, token


def _function_config(command: list[str], env: dict[str, str], cwd: str, init_caching: bool = False) -> FunctionConfig:
    def setting(name: str, default: str) -> str:
        return env.get(name) or default  # empty counts as unset, as in the Go emulator

    name = setting("AWS_LAMBDA_FUNCTION_NAME", defaults.FUNCTION_NAME)
    version = setting("AWS_LAMBDA_FUNCTION_VERSION", defaults.FUNCTION_VERSION)
    timeout_text = setting(FUNCTION_TIMEOUT_ENV, str(defaults.FUNCTION_TIMEOUT_S))
    timeout = _number(timeout_text, FUNCTION_TIMEOUT_ENV, int, minimum=0)
    memory_text = setting("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", str(defaults.FUNCTION_MEMORY_MB))
    memory = _number(memory_text, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", int, minimum=1)
    env_handler = env.get("AWS_LAMBDA_FUNCTION_HANDLER") or env.get("_HANDLER") or None
    concurrency_text = env.get(MAX_CONCURRENCY_ENV)
    concurrency = _number(concurrency_text, MAX_CONCURRENCY_ENV, int, minimum=1) if concurrency_text else None
    if init_caching and concurrency is not None:
        raise ConfigError(
            f"--enable-init-caching (SnapStart) cannot be combined with {MAX_CONCURRENCY_ENV} (Managed Instances): "
            "pyrie runs SnapStart's hooks in environments that take one invoke at a time"
        )
    snapstart = _snapstart(env) if init_caching else None

    run_client = list(RUNTIME_CLIENT)
    if not command:
        bootstrap = next((path for path in DEFAULT_BOOTSTRAPS if os.path.isfile(path)), None)
        if bootstrap is not None:
            argv, workdir, handler = [bootstrap], DEFAULT_TASK_ROOT, env_handler
        elif env_handler:
            argv, workdir, handler = run_client, env.get("LAMBDA_TASK_ROOT") or cwd, env_handler
        else:
            raise ConfigError(
                "no bootstrap: none of " + ", ".join(DEFAULT_BOOTSTRAPS) + " exists; "
                "give a bootstrap command or a handler (for example: pyrie app.handler)"
            )
    elif len(command) == 1 and _HANDLER_SHAPE.match(command[0]) and _resolve(command[0], env) is None:
        handler = env_handler or command[0]
        argv, workdir = [*run_client, handler], cwd
    else:
        argv, workdir = list(command), cwd
        handler = env_handler or (command[-1] if len(command) > 1 else None)

    executable = _resolve(argv[0], env)
    if executable is None:
        raise ConfigError(f"bootstrap {argv[0]!r} not found or not executable")
    if not os.path.isdir(workdir):
        raise ConfigError(f"the working directory {workdir} does not exist")

    return FunctionConfig(
        name=name,
        version=version,
        memory_mb=memory,
        timeout_s=timeout,
        command=tuple(argv),
        cwd=workdir,
        handler=handler,
        base_env=frozen_env(_runtime_base_env(env, name, version, handler, concurrency, init_caching=init_caching)),
        log_format="JSON" if env.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON" else "Text",
        concurrency=concurrency,
        snapstart=snapstart,
    )


def _snapstart(env: Mapping[str, str]) -> SnapStartConfig:
    """A token for the credentials endpoint (a UUID, as the Go emulator makes it) and what it hands out: pyrie's own
    AWS_* credentials when it has them, else dummies."""
    if env.get("AWS_ACCESS_KEY_ID"):
        key, secret, session = (env.get(name, "") for name in CREDENTIAL_ENV)
    else:
        key, secret, session = DUMMY_CREDENTIALS
    import uuid  # noqa: PLC0415 - only for SnapStart: uuid imports platform, 1.5 ms of every start-up

    return SnapStartConfig(str(uuid.uuid4()), key, secret, session)


def _runtime_base_env(
    env: Mapping[str, str],
    name: str,
    version: str,
    handler: str | None,
    concurrency: int | None,
    *,
    init_caching: bool = False,
) -> dict[str, str]:
    """The runtime's environment as the Go emulator computes it (rie-behaviour.md §3.2), later maps winning; for
    Managed Instances, with the initialization type Lambda sets (AWS_LAMBDA_MAX_CONCURRENCY passes on as it is); for
    SnapStart, with its initialization type and without the credential variables (the runtime gets its credentials
    from the container credentials endpoint instead, ``FunctionConfig.runtime_env``) or the log group and stream."""
    runtime_env = {
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/Functions",
        "AWS_LAMBDA_LOG_STREAM_NAME": "$LATEST",
        "AWS_LAMBDA_FUNCTION_VERSION": defaults.FUNCTION_VERSION,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(defaults.FUNCTION_MEMORY_MB),
        "AWS_LAMBDA_FUNCTION_NAME": defaults.FUNCTION_NAME,
    }
    runtime_env.update(env)
    runtime_env.pop(SUPERVISOR_TOKEN_ENV, None)  # pyrie's secret, not the function's
    for credential in CREDENTIAL_ENV:
        if init_caching:
            runtime_env.pop(credential, None)
        else:
            runtime_env[credential] = env.get(credential, "")
    if init_caching:  # "not available in Lambda SnapStart functions" (snapstart-monitoring.html)
        runtime_env.pop("AWS_LAMBDA_LOG_GROUP_NAME", None)
        runtime_env.pop("AWS_LAMBDA_LOG_STREAM_NAME", None)
    if handler is not None:
        runtime_env["_HANDLER"] = handler
    runtime_env["AWS_LAMBDA_FUNCTION_NAME"] = name
    runtime_env["AWS_LAMBDA_FUNCTION_VERSION"] = version
    if concurrency is not None:
        runtime_env[INITIALIZATION_TYPE_ENV] = "lambda-managed-instances"
    elif init_caching:
        runtime_env[INITIALIZATION_TYPE_ENV] = "snap-start"
    return runtime_env


def _resolve(program: str, env: Mapping[str, str]) -> str | None:
    """The executable ``program`` names, looked up as exec would (through PATH when it has no slash)."""
    if os.sep in program:
        return program if os.path.isfile(program) and os.access(program, os.X_OK) else None
    return shutil.which(program, path=env.get("PATH", os.defpath))


def _address(text: str, what: str) -> Address:
    try:
        return Address.parse(text, what)
    except InvalidAddress as exc:
        raise ConfigError(str(exc)) from None


def _required(text: str | None) -> str:
    assert text is not None, "every option used here has a default"
    return text


def _number(text: str, what: str, kind: Callable[[str], Any], minimum: float) -> Any:
    """A whole number (digits only, as Go's ParseInt takes it) or a finite decimal, at least ``minimum``."""
    noun = "a whole number" if kind is int else "a number"
    if not _NUMBER_SHAPE[kind].fullmatch(text.strip()):
        raise ConfigError(f"{what}: {text!r} is not {noun}")
    number = kind(text)
    if number < minimum:
        raise ConfigError(f"{what}: {text!r} is below the minimum of {minimum:g}")
    return number
