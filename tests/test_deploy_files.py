"""The files in deploy/ checked without a Docker engine or a cluster: each parses and validates against its published
schema, and every path, port, name and probe in it points at something that exists.

Schemas (bundled with the validators, so nothing is fetched): the Compose Specification's JSON schema as vendored by
check-jsonschema (``--builtin-schema vendor.compose-spec``), and the Kubernetes JSON schemas bundled by
kubernetes-validate, its newest Kubernetes version, strict (unknown fields are errors).
"""

from __future__ import annotations

import ast
import configparser
import copy
import fnmatch
import importlib
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests import dockerfiles
from tests.harness import ROOT

DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
LAMBDA_DOCKERFILE = DEPLOY / "lambda-base-image.Dockerfile"
COMPOSE = DEPLOY / "docker-compose.yml"
KUBERNETES = DEPLOY / "kubernetes"
BIN = Path(sys.executable).parent
HEALTH_PATH = "/healthz"
VENV = "/usr/local/pyrie"  # where both images install pyrie, in a virtual environment of its own


def setup_cfg() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    return parser


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


# --- Dockerfiles ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [DOCKERFILE, LAMBDA_DOCKERFILE], ids=lambda p: p.name)
def test_every_copied_path_exists_in_the_build_context(path):
    ignored = dockerignore_patterns()
    copies = [i for i in dockerfiles.read(path) if i.keyword in ("COPY", "ADD") and "from" not in i.options]
    assert copies
    for instruction in copies:
        for source in dockerfiles.copy_sources(instruction):
            assert (ROOT / source).exists(), f"{path.name}:{instruction.line}: {source} does not exist"
            hits = [p for p in ignored if fnmatch.fnmatch(source.rstrip("/"), p)]
            assert not hits, f"{path.name}:{instruction.line}: {source} is excluded by .dockerignore ({hits})"


def own_packages() -> set[str]:
    """pyrie's packages, as setup.py names them."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    (value,) = (
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["OWN_PACKAGES"]
    )
    return set(ast.literal_eval(value))


@pytest.mark.parametrize("path", [DOCKERFILE, LAMBDA_DOCKERFILE], ids=lambda p: p.name)
def test_the_image_gets_everything_pip_needs_to_install_pyrie(path):
    copied = {
        source.rstrip("/")
        for i in dockerfiles.read(path)
        if i.keyword == "COPY" and "from" not in i.options
        for source in dockerfiles.copy_sources(i)
    }
    tops = {Path(source).parts[0] for source in copied}
    packages = own_packages()
    assert packages <= tops, f"packages not copied into the image: {packages - tops}"
    metadata = {"setup.py", "setup.cfg", "pyproject.toml", "README.md"}  # README.md is the long description
    assert metadata <= copied
    assert {"packaging", "packaging/pyrie"} & copied  # the entry point, the package pyrie


def shell_commands(path: Path) -> list[list[str]]:
    """The commands of every RUN (shell form), each as its words, split at ``&&`` and ``||``."""
    return [
        command
        for instruction in dockerfiles.read(path)
        if instruction.keyword == "RUN"
        for command in shell_commands_of(instruction)
    ]


def shell_commands_of(instruction: dockerfiles.Instruction) -> list[list[str]]:
    commands: list[list[str]] = []
    command: list[str] = []
    for word in shlex.split(instruction.text):
        if word in ("&&", "||", ";"):
            commands.append(command)
            command = []
        else:
            command.append(word)
    commands.append(command)
    return [command for command in commands if command]


def test_pyrie_is_installed_into_a_virtual_environment_of_its_own():
    path = DOCKERFILE
    commands = shell_commands(path)
    venvs = [command[command.index("venv") + 1] for command in commands if command[1:3] == ["-m", "venv"]]
    assert venvs == [VENV]
    pip_installs = [
        command
        for command in commands
        if "install" in command
        and any(Path(word).name in ("pip", "pip3") for word in command[: command.index("install")])
    ]
    assert pip_installs, "pyrie is not installed with pip"
    assert all(command[0] == f"{VENV}/bin/pip" for command in pip_installs), pip_installs
    # only pyrie's command is on PATH: the image's python and pip stay its own
    assert not [i for i in dockerfiles.read(path) if i.keyword == "ENV" and VENV in i.text]


def test_the_pyrie_image_has_the_pyrie_command_on_its_path():
    assert ["ln", "-s", f"{VENV}/bin/pyrie", "/usr/local/bin/pyrie"] in shell_commands(DOCKERFILE)


def test_the_entrypoint_is_the_pyrie_command():
    instructions = dockerfiles.read(DOCKERFILE)
    entrypoints = [i for i in instructions if i.keyword == "ENTRYPOINT"]
    assert [i.exec_form for i in entrypoints] == [["pyrie"]]
    scripts = dict(
        line.replace(" ", "").split("=", 1)
        for line in setup_cfg()["options.entry_points"]["console_scripts"].splitlines()
        if line.strip()
    )
    module_name, function_name = scripts["pyrie"].split(":")
    assert callable(getattr(importlib.import_module(module_name), function_name))
    assert (BIN / "pyrie").is_file()  # the install makes the command, as pip does in the image


def test_the_stages_build_on_each_other_and_the_default_is_plain_pyrie():
    froms = [i for i in dockerfiles.read(DOCKERFILE) if i.keyword == "FROM"]
    assert froms[0].words[0].startswith("python:3.11")
    names = [f.stage for f in froms]
    for index, later in enumerate(froms[1:], start=1):
        assert later.words[0] in names[:index], f"line {later.line}: {later.words[0]} is no earlier stage"
    assert froms[-1].words == ["pyrie"]  # `docker build` without --target gives pyrie alone


def test_the_python_sse_stage_runs_the_example_handler():
    stage = [i for i in dockerfiles.read(DOCKERFILE) if i.stage == "python-sse"]
    copies = [dockerfiles.copy_sources(i) for i in stage if i.keyword == "COPY"]
    assert copies == [["examples/python-sse/"]]
    commands = [i.exec_form for i in stage if i.keyword == "CMD"]
    assert commands == [["app.handler"]]
    module, _, function = commands[0][0].partition(".")
    assert f"def {function}(" in (ROOT / "examples/python-sse" / f"{module}.py").read_text()


def test_the_health_check_asks_healthz_on_the_invoke_port():
    checks = [i for i in dockerfiles.read(DOCKERFILE) if i.keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    command = checks[0].text.partition(" CMD ")[2]
    assert f"http://127.0.0.1:8080{HEALTH_PATH}" in command


def test_the_lambda_base_image_puts_the_single_file_where_the_entrypoint_runs_the_emulator():
    instructions = dockerfiles.read(LAMBDA_DOCKERFILE)
    assert not [i for i in instructions if i.keyword in ("ENTRYPOINT", "CMD", "HEALTHCHECK")]  # the base image's
    froms = [i for i in instructions if i.keyword == "FROM"]
    assert [(f.words, f.stage) for f in froms] == [
        (["debian:bookworm-slim", "AS", "build"], "build"),
        (["scratch", "AS", "file"], "file"),
        (["${BASE_IMAGE}"], froms[-1].stage),
    ]
    build = [i for i in instructions if i.stage == "build" and i.keyword == "RUN"]
    assert ["make", "dist"] in [command for i in build for command in shell_commands_of(i)]
    final = [i for i in instructions if i.stage == froms[-1].stage and i.keyword == "COPY"]
    assert [(i.options, i.words[-2:]) for i in final] == [
        ({"from": "build"}, ["/aws-lambda-rie", "/usr/local/bin/aws-lambda-rie"])
    ]
    assert [i.options for i in instructions if i.stage == "file" and i.keyword == "COPY"] == [{"from": "build"}]
    makefile = (ROOT / "Makefile").read_text()
    assert "\ndist:" in makefile and "/usr/bin/python3.11" in makefile  # the stage installs Debian's python3.11


# --- docker-compose.yml ------------------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def check_compose(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_compose_file_validates_against_the_compose_spec():
    result = check_compose(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "break_it",
    [
        lambda doc: doc["services"]["python-sse"].update(healthcheck={"test": 5}),
        lambda doc: doc["services"]["locust"].update(depends_on={"python-sse": {"condition": "when_ready"}}),
        lambda doc: doc.update(servicez={}),
    ],
    ids=["healthcheck-test", "depends-on-condition", "unknown-top-level-key"],
)
def test_the_compose_validation_can_fail(tmp_path, break_it):
    document = compose()
    rewritten = tmp_path / "docker-compose.yml"
    rewritten.write_text(yaml.safe_dump(document))
    assert check_compose(rewritten).returncode == 0  # rewriting alone breaks nothing
    break_it(document)
    rewritten.write_text(yaml.safe_dump(document))
    assert check_compose(rewritten).returncode != 0


def test_compose_builds_and_mounts_what_exists():
    services = compose()["services"]
    assert {"python-sse", "node-sse", "locust"} <= set(services)
    stages = {i.stage for i in dockerfiles.read(DOCKERFILE)}
    for name, service in services.items():
        build = service.get("build")
        if build is not None:
            context = (COMPOSE.parent / build["context"]).resolve()
            assert context == ROOT, name
            assert (context / build["dockerfile"]).is_file(), name
            if "target" in build:
                assert build["target"] in stages, name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert (COMPOSE.parent / source).exists(), f"{name}: {source}"
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond this machine"


def test_compose_functions_are_the_streaming_examples():
    services = compose()["services"]
    assert services["python-sse"]["build"]["target"] == "python-sse"
    node = services["node-sse"]
    assert "../examples/node-sse:/var/task:ro" in node["volumes"]
    assert node["command"] == ["index.plain"]
    assert "export const plain" in (ROOT / "examples/node-sse/index.mjs").read_text()
    assert node["build"]["dockerfile"] == "deploy/lambda-base-image.Dockerfile"


def test_compose_health_checks_ask_healthz_and_locust_waits_for_them():
    services = compose()["services"]
    functions = ["python-sse", "node-sse"]
    for name in functions:
        test = services[name]["healthcheck"]["test"]
        assert test[0] == "CMD"
        assert f"http://127.0.0.1:8080{HEALTH_PATH}" in " ".join(test)
    locust = services["locust"]
    assert locust["depends_on"] == {name: {"condition": "service_healthy"} for name in functions}
    assert "./locustfile.py:/mnt/locust/locustfile.py:ro" in locust["volumes"]
    assert locust["command"][:2] == ["-f", "/mnt/locust/locustfile.py"]
    assert locust["environment"] == {
        "PYTHON_FUNCTION_URL": "http://python-sse:8080",
        "NODE_FUNCTION_URL": "http://node-sse:8080",
    }
    pinned = locust["image"].rpartition(":")[2]
    assert pinned.count(".") == 2, "pin the locust image to a version"


# --- Kubernetes ----------------------------------------------------------------------------------------------------


def manifests() -> dict[str, dict[str, Any]]:
    """Every document in deploy/kubernetes, by kind."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            assert document["kind"] not in found, f"a second {document['kind']} in {path.name}"
            found[document["kind"]] = document
    return found


def test_kubernetes_manifests_are_the_three_expected():
    assert set(manifests()) == {"Deployment", "Service", "HorizontalPodAutoscaler"}


@pytest.mark.parametrize("kind", ["Deployment", "Service", "HorizontalPodAutoscaler"])
def test_kubernetes_manifest_validates_against_the_kubernetes_schema(kind):
    version = kubernetes_validate.latest_version()
    assert kubernetes_validate.validate(manifests()[kind], version, strict=True)


@pytest.mark.parametrize(
    ("kind", "break_it"),
    [
        ("Deployment", lambda doc: doc["spec"].pop("selector")),
        ("Deployment", lambda doc: doc["spec"]["template"]["spec"]["containers"][0].update(readinessprobe={})),
        ("Service", lambda doc: doc["spec"]["ports"][0].update(port="8080")),
        ("HorizontalPodAutoscaler", lambda doc: doc["spec"].update(targetCPUUtilizationPercentage=70)),
    ],
    ids=["no-selector", "misspelt-probe", "port-as-text", "v1-field-in-v2"],
)
def test_the_kubernetes_validation_can_fail(kind, break_it):
    document = copy.deepcopy(manifests()[kind])
    break_it(document)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(document, kubernetes_validate.latest_version(), strict=True)


def test_kubernetes_probes_ask_healthz_on_the_invoke_port():
    deployment = manifests()["Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    port_names = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert port_names == {"invoke": 8080}
    for probe in ("readinessProbe", "livenessProbe"):
        http_get = container[probe]["httpGet"]
        assert http_get == {"path": HEALTH_PATH, "port": "invoke"}, probe
        # /healthz gives up on an unreachable supervisor within a few seconds; the probe waits a little longer.
        assert container[probe]["timeoutSeconds"] >= 3, probe


def test_kubernetes_objects_point_at_each_other():
    found = manifests()
    deployment, service, hpa = found["Deployment"], found["Service"], found["HorizontalPodAutoscaler"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert service["spec"]["ports"][0]["targetPort"] in {port["name"] for port in container["ports"]}
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        deployment["apiVersion"],
        "Deployment",
        deployment["metadata"]["name"],
    )
    assert "cpu" in container["resources"]["requests"]  # what the HPA's utilisation is measured against


def test_kubernetes_runs_the_image_the_dockerfile_and_compose_build():
    (container,) = manifests()["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == compose()["services"]["python-sse"]["image"]
    assert container["imagePullPolicy"] == "IfNotPresent"  # a locally built image, loaded into the cluster
    assert f"--target python-sse -t {container['image']}" in DOCKERFILE.read_text()
