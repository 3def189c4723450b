"""The command that starts a function's runtime, without Docker.

- ``--runtime-command RUNTIME=COMMAND`` first: for that exact runtime (``java21``), or for its family (``java``,
  ``python``, ``nodejs``, ``provided``...). COMMAND is split as a shell would split it; the handler, when the function
  has one, is added as its last word, as Lambda's own runtime clients take it (``python -m awslambdaric app.handler``,
  ``java -cp ... AWSLambda example.Handler::handleRequest``).
- ``python3.x``: pyrie's own runtime client under pyrie's interpreter (as ``pyrie app.handler`` runs it);
- ``nodejs*``: ``node`` from PATH running aws-lambda-ric, from ``CodeUri/node_modules/aws-lambda-ric``, else the
  package directory ``PYRIE_NODE_RIC`` names, else ``aws-lambda-ric`` on PATH;
- ``provided*``, and a function with no Runtime: ``CodeUri/bootstrap``, which must be executable.

Anything else is a ``RuntimeUnavailable`` whose message says what to install or pass.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from supervisor.template.model import TemplateError

__all__ = [
    "NODE_RIC_ENV",
    "RuntimeCommands",
    "RuntimeUnavailable",
    "family_of",
    "parse_runtime_commands",
    "runtime_command",
]

NODE_RIC_ENV: Final = "PYRIE_NODE_RIC"
NODE_RIC_PACKAGE: Final = "aws-lambda-ric"
_FAMILY: Final = re.compile(r"^[a-z]+")


class RuntimeUnavailable(Exception):
    """The function's runtime cannot be started; the message says what to install or pass."""


@dataclass(frozen=True, slots=True)
class RuntimeCommands:
    """``--runtime-command`` values: runtime or family -> the command's words."""

    commands: Mapping[str, tuple[str, ...]]

    def for_runtime(self, runtime: str | None) -> tuple[str, tuple[str, ...]] | None:
        """The flag's key and command for ``runtime``: its own, else its family's."""
        if runtime is None:
            return None
        for key in (runtime, family_of(runtime)):
            if key in self.commands:
                return key, self.commands[key]
        return None


def family_of(runtime: str) -> str:
    """``java21`` -> ``java``, ``nodejs22.x`` -> ``nodejs``, ``provided.al2023`` -> ``provided``."""
    found = _FAMILY.match(runtime)
    return found.group(0) if found else runtime


def parse_runtime_commands(arguments: Iterable[str]) -> RuntimeCommands:
    commands: dict[str, tuple[str, ...]] = {}
    for argument in arguments:
        runtime, equals, command = argument.partition("=")
        runtime = runtime.strip()
        if not equals or not runtime:
            raise TemplateError(f"--runtime-command: {argument!r} is not RUNTIME=COMMAND (for example java21=...)")
        try:
            words = tuple(shlex.split(command))
        except ValueError as exc:
            raise TemplateError(f"--runtime-command {runtime}: {command!r}: {exc}") from None
        if not words:
            raise TemplateError(f"--runtime-command {runtime}: the command is empty")
        commands[runtime] = words
    return RuntimeCommands(commands)


def runtime_command(
    runtime: str | None,
    handler: str | None,
    code_dir: str,
    *,
    commands: RuntimeCommands,
    python_client: Sequence[str],
    environ: Mapping[str, str],
    cwd: str,
) -> tuple[str, ...]:
    """The runtime's command line, its first word an absolute path, or ``RuntimeUnavailable``."""
    handler_words = (handler,) if handler else ()
    given = commands.for_runtime(runtime)
    if given is not None:
        key, words = given
        program = _executable(words[0], environ, cwd)
        if program is None:
            raise RuntimeUnavailable(f"--runtime-command {key}: {words[0]!r} is not an executable file or on PATH")
        return (program, *words[1:], *handler_words)
    family = family_of(runtime) if runtime else None
    if family == "python":
        if handler is None:
            raise RuntimeUnavailable("has no Handler (for example app.handler)")
        return (*python_client, handler)
    if family == "nodejs":
        if handler is None:
            raise RuntimeUnavailable("has no Handler (for example index.handler)")
        return (*_node_ric(runtime or "", code_dir, environ, cwd), handler)
    if family == "provided" or runtime is None:
        bootstrap = os.path.join(code_dir, "bootstrap")
        if not os.path.isfile(bootstrap):
            raise RuntimeUnavailable(f"has no bootstrap: {bootstrap} does not exist")
        if not os.access(bootstrap, os.X_OK):
            raise RuntimeUnavailable(f"has a bootstrap that is not executable: chmod +x {bootstrap}")
        return (bootstrap,)
    raise RuntimeUnavailable(
        f"pyrie cannot start {runtime} by itself: pass --runtime-command {runtime}=COMMAND "
        f"(or --runtime-command {family}=COMMAND for the whole family), the command that starts its runtime client"
    )


def _node_ric(runtime: str, code_dir: str, environ: Mapping[str, str], cwd: str) -> tuple[str, ...]:
    """``node`` and the aws-lambda-ric entry point, or the ``aws-lambda-ric`` executable on PATH."""
    package_dirs = [os.path.join(code_dir, "node_modules", NODE_RIC_PACKAGE)]
    if environ.get(NODE_RIC_ENV):
        package_dirs.append(os.path.join(cwd, environ[NODE_RIC_ENV]))
    package = next((path for path in package_dirs if os.path.isdir(path)), None)
    if package is None:
        on_path = _executable(NODE_RIC_PACKAGE, environ, cwd)
        if on_path is not None:
            return (on_path,)
        raise RuntimeUnavailable(
            f"needs the Node.js runtime client {NODE_RIC_PACKAGE}: run `npm install {NODE_RIC_PACKAGE}` in "
            f"{code_dir}, or set {NODE_RIC_ENV} to the package's directory (.../node_modules/{NODE_RIC_PACKAGE}), "
            f"or pass --runtime-command {runtime}=COMMAND"
        )
    node = _executable("node", environ, cwd)
    if node is None:
        raise RuntimeUnavailable(
            f"needs node on PATH to run {NODE_RIC_PACKAGE}: install Node.js, "
            f"or pass --runtime-command {runtime}=COMMAND"
        )
    entry = _package_entry(package)
    if entry is None:
        raise RuntimeUnavailable(f"{package} has no entry point (its package.json names no bin or main file)")
    return (node, entry)


def _package_entry(package: str) -> str | None:
    """The file a Node.js package's ``bin`` (else ``main``, else index.mjs / index.js) names, if it exists."""
    candidates: list[str] = []
    try:
        with open(os.path.join(package, "package.json"), encoding="utf-8") as file:
            manifest = json.load(file)
    except (OSError, ValueError):
        manifest = {}
    if isinstance(manifest, dict):
        bin_field = manifest.get("bin")
        if isinstance(bin_field, dict):
            bin_field = bin_field.get(NODE_RIC_PACKAGE) or next(iter(bin_field.values()), None)
        candidates += [value for value in (bin_field, manifest.get("main")) if isinstance(value, str)]
    candidates += ["index.mjs", "index.js"]
    for candidate in candidates:
        path = os.path.normpath(os.path.join(package, candidate))
        if os.path.isfile(path):
            return path
    return None


def _executable(program: str, environ: Mapping[str, str], cwd: str) -> str | None:
    """``program`` as exec would find it: a path (relative to ``cwd``) or a name looked up on PATH; absolute."""
    if os.sep in program:
        path = os.path.normpath(os.path.join(cwd, program))
        return path if os.path.isfile(path) and os.access(path, os.X_OK) else None
    found = shutil.which(program, path=environ.get("PATH", os.defpath))
    return os.path.abspath(found) if found else None
