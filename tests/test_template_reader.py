"""supervisor.template.read_template over real template files on disk: Globals, parameters and their overrides, the
--env-vars file, code in directories, .zip archives and inline, the runtimes pyrie starts and those it cannot, and
what it says about what it cannot resolve."""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
import textwrap
import zipfile
from pathlib import Path

import pytest

from supervisor.cli import RUNTIME_CLIENT
from supervisor.template import Template, TemplateError, read_template
from supervisor.template.model import DurableSettings, FunctionUrl, ManagedInstances

NODE = shutil.which("node")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A SAM project: python/app.py and shell/bootstrap (executable) beside the template."""
    (tmp_path / "python").mkdir()
    (tmp_path / "python" / "app.py").write_text("def handler(event, context):\n    return event\n")
    (tmp_path / "shell").mkdir()
    executable(tmp_path / "shell" / "bootstrap")
    return tmp_path


def executable(path: Path) -> Path:
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def read(
    project: Path,
    text: str,
    *,
    overrides: tuple[str, ...] = (),
    env_vars: dict | None = None,
    runtime_commands: tuple[str, ...] = (),
    environ: dict[str, str] | None = None,
    name: str = "template.yaml",
) -> Template:
    (project / name).write_text(textwrap.dedent(text))
    env_vars_path = None
    if env_vars is not None:
        (project / "env.json").write_text(json.dumps(env_vars))
        env_vars_path = "env.json"
    return read_template(
        name,
        parameter_overrides=overrides,
        env_vars_path=env_vars_path,
        runtime_commands=runtime_commands,
        python_client=RUNTIME_CLIENT,
        environ={"PATH": os.environ["PATH"]} if environ is None else environ,
        cwd=str(project),
    )


def refusal(project: Path, text: str, **kwargs) -> str:
    with pytest.raises(TemplateError) as refused:
        read(project, text, **kwargs)
    return str(refused.value)


SAM = """\
    Transform: AWS::Serverless-2016-10-31
    Parameters:
      Stage: {Type: String, Default: dev}
    Globals:
      Function:
        Runtime: python3.12
        CodeUri: python/
        Timeout: 20
        MemorySize: 512
        Environment:
          Variables:
            STAGE: !Ref Stage
            TABLE: global-table
    Resources:
      Api:
        Type: AWS::Serverless::Function
        Properties:
          Handler: app.handler
          FunctionName: !Sub "${Stage}-api"
          Timeout: 5
          ReservedConcurrentExecutions: 3
          AutoPublishAlias: live
          Environment:
            Variables:
              TABLE: own-table
              COUNT: 7
              ON: true
          FunctionUrlConfig:
            AuthType: AWS_IAM
            InvokeMode: RESPONSE_STREAM
          LoggingConfig:
            LogFormat: JSON
            ApplicationLogLevel: DEBUG
      Worker:
        Type: AWS::Serverless::Function
        Properties:
          Handler: app.handler
          IgnoreGlobals: "*"
        IgnoreGlobals: [Environment, Timeout]
      Durable:
        Type: AWS::Serverless::Function
        Properties:
          Handler: app.handler
          DurableConfig: {ExecutionTimeout: 3600}
          TenancyConfig: {TenantIsolationMode: PER_TENANT}
          CapacityProviderConfig:
            Arn: arn:aws:lambda:us-east-1:123456789012:capacity-provider:cp
            PerExecutionEnvironmentMaxConcurrency: 8
          SnapStart: {ApplyOn: PublishedVersions}
          FunctionUrlConfig: {AuthType: NONE}
      Table:
        Type: AWS::DynamoDB::Table
"""


def test_a_sam_template_with_globals(project):
    template = read(project, SAM, overrides=("Stage=prod",))
    api, worker, durable = template.functions
    assert template.warnings == ()
    assert api.logical_id == "Api"
    assert api.function_name == "prod-api"
    assert api.name == "prod-api"
    assert api.names == ("Api", "prod-api")
    assert template.function("prod-api") is api
    assert template.function("Api") is api
    assert api.runtime == "python3.12"
    assert api.handler == "app.handler"
    assert api.code_dir == str(project / "python")
    assert api.command == (*RUNTIME_CLIENT, "app.handler")
    assert dict(api.environment) == {"STAGE": "prod", "TABLE": "own-table", "COUNT": "7", "ON": "true"}
    assert dict(api.runtime_env) == {
        "LAMBDA_TASK_ROOT": str(project / "python"),
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_LAMBDA_LOG_LEVEL": "DEBUG",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/prod-api",
    }
    assert (api.timeout_s, api.memory_mb, api.log_format) == (5, 512, "JSON")
    assert api.reserved_concurrency == 3
    assert api.alias == "live"
    assert api.url == FunctionUrl(auth_type="AWS_IAM", invoke_mode="RESPONSE_STREAM")
    # IgnoreGlobals is a resource attribute: the one inside Properties is no such thing, and SAM ignores it too
    assert (worker.timeout_s, worker.memory_mb, dict(worker.environment)) == (3, 512, {})
    assert worker.function_name is None
    assert worker.name == "Worker"
    assert worker.url is None
    assert worker.reserved_concurrency is None
    assert durable.durable == DurableSettings(execution_timeout_s=3600, retention_days=14)
    assert durable.tenant_isolation is True
    assert durable.managed_instances == ManagedInstances(max_concurrency=8)
    assert durable.snapstart is True
    assert durable.url == FunctionUrl(auth_type="NONE", invoke_mode="BUFFERED")


CLOUDFORMATION_JSON = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Resources": {
        "Echo": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Code": "shell",
                "Runtime": "provided.al2023",
                "Handler": "x",
                "MemorySize": "1024",
                "CapacityProviderConfig": {
                    "LambdaManagedInstancesCapacityProviderConfig": {"CapacityProviderArn": "a"}
                },
            },
        },
        "EchoUrl": {
            "Type": "AWS::Lambda::Url",
            "Properties": {"TargetFunctionArn": {"Fn::GetAtt": ["Echo", "Arn"]}, "AuthType": "NONE"},
        },
        "FromCdk": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Code": {"S3Bucket": "cdk-assets", "S3Key": "abc.zip"},
                "Handler": "app.handler",
                "Runtime": "python3.13",
            },
            "Metadata": {"aws:asset:path": "python", "aws:asset:property": "Code"},
        },
        "CdkUrl": {
            "Type": "AWS::Lambda::Url",
            "Properties": {
                "TargetFunctionArn": {"Ref": "FromCdk"},
                "AuthType": "NONE",
                "InvokeMode": "RESPONSE_STREAM",
            },
        },
        "Lost": {
            "Type": "AWS::Lambda::Url",
            "Properties": {"TargetFunctionArn": "arn:aws:lambda:us-east-1:1:function:elsewhere", "AuthType": "NONE"},
        },
    },
}


def test_a_cloudformation_template_in_json(project):
    template = read(project, json.dumps(CLOUDFORMATION_JSON), name="template.json")
    echo, cdk = template.functions
    assert echo.resource_type == "AWS::Lambda::Function"
    assert echo.command == (str(project / "shell" / "bootstrap"),)
    assert echo.memory_mb == 1024
    assert echo.runtime_env["LAMBDA_TASK_ROOT"] == str(project / "shell")
    assert "AWS_EXECUTION_ENV" not in echo.runtime_env  # a custom runtime has none
    assert echo.managed_instances == ManagedInstances(max_concurrency=4)  # SAM CLI's default
    assert echo.url == FunctionUrl(auth_type="NONE", invoke_mode="BUFFERED")
    assert cdk.code_dir == str(project / "python")
    assert cdk.url == FunctionUrl(auth_type="NONE", invoke_mode="RESPONSE_STREAM")
    assert template.warnings == (
        "template.json: Lost (AWS::Lambda::Url): its TargetFunctionArn arn:aws:lambda:us-east-1:1:function:elsewhere "
        "names no function pyrie serves; ignored",
    )


CONDITIONS = """\
    Parameters:
      Stage: {Type: String, Default: dev, AllowedValues: [dev, prod]}
    Conditions:
      IsProd: !Equals [!Ref Stage, prod]
    Mappings:
      Sizes: {dev: {Memory: 128}, prod: {Memory: 2048}}
    Resources:
      Main:
        Type: AWS::Serverless::Function
        Properties:
          CodeUri: python
          Handler: app.handler
          Runtime: python3.12
          MemorySize: !FindInMap [Sizes, !Ref Stage, Memory]
          Timeout: !If [IsProd, 30, !Ref AWS::NoValue]
      ProdOnly:
        Type: AWS::Serverless::Function
        Condition: IsProd
        Properties: {CodeUri: python, Handler: app.handler, Runtime: python3.12}
"""


def test_parameters_and_conditions_decide_values_and_functions(project):
    dev = read(project, CONDITIONS)
    assert [function.logical_id for function in dev.functions] == ["Main"]
    assert (dev.functions[0].memory_mb, dev.functions[0].timeout_s) == (128, 3)
    assert dev.warnings == ("template.yaml: function ProdOnly is not served: its Condition IsProd is false",)
    prod = read(project, CONDITIONS, overrides=("ParameterKey=Stage,ParameterValue=prod",))
    assert [function.logical_id for function in prod.functions] == ["Main", "ProdOnly"]
    assert (prod.functions[0].memory_mb, prod.functions[0].timeout_s) == (2048, 30)
    assert "is not one of the AllowedValues (dev, prod)" in refusal(project, CONDITIONS, overrides=("Stage=qa",))


ENV_VARS = """\
    Resources:
      Hello:
        Type: AWS::Serverless::Function
        Properties:
          CodeUri: python
          Handler: app.handler
          Runtime: python3.12
          FunctionName: hello-fn
          Environment:
            Variables: {FROM_TEMPLATE: t, FROM_SHELL: t, FROM_PARAMETERS: t, FROM_FUNCTION: t, BOTH: t}
      Other:
        Type: AWS::Serverless::Function
        Properties:
          CodeUri: python
          Handler: app.handler
          Runtime: python3.12
          Environment:
            Variables: {BOTH: t}
"""


def test_env_vars_follow_sam_clis_order_and_set_only_declared_variables(project):
    template = read(
        project,
        ENV_VARS,
        env_vars={
            "Parameters": {"FROM_PARAMETERS": "p", "BOTH": "p", "NOBODY": "p"},
            "hello-fn": {"FROM_FUNCTION": "f", "BOTH": "f", "UNDECLARED": "f"},
            "Ghost": {"X": "1"},
        },
        environ={"PATH": os.environ["PATH"], "FROM_SHELL": "s", "FROM_PARAMETERS": "s", "BOTH": "s"},
    )
    hello, other = template.functions
    assert dict(hello.environment) == {
        "FROM_TEMPLATE": "t",
        "FROM_SHELL": "s",
        "FROM_PARAMETERS": "p",
        "FROM_FUNCTION": "f",
        "BOTH": "f",
    }
    assert dict(other.environment) == {"BOTH": "p"}
    assert template.warnings == (
        "--env-vars env.json: UNDECLARED for Hello not set: the template's Environment.Variables of Hello do not "
        "declare it (SAM CLI sets only declared variables)",
        "--env-vars env.json: Ghost names no function of the template; its variables are not used",
        "--env-vars env.json: Parameters NOBODY not set: no function's Environment.Variables declare it",
    )


UNRESOLVED = """\
    Parameters:
      DbUrl: {Type: String}
    Resources:
      Table:
        Type: AWS::DynamoDB::Table
      Hello:
        Type: AWS::Serverless::Function
        Properties:
          CodeUri: python
          Handler: app.handler
          Runtime: python3.12
          Role: !GetAtt Role.Arn
          FunctionName: !ImportValue shared-name
          Timeout: !GetAtt Table.Timeout
          Layers: [arn:aws:lambda:us-east-1:123456789012:layer:x:1]
          Environment:
            Variables:
              TABLE_ARN: !GetAtt Table.Arn
              TABLE_NAME: !Ref Table
              DB: !Ref DbUrl
              REGION_TABLE: !Sub "${AWS::Region}-${Table}"
              AWS_REGION: eu-west-1
              FINE: ok
          FunctionUrlConfig:
            AuthType: NONE
            Cors: {AllowOrigins: ["*"]}
"""


def test_what_cannot_be_resolved_is_named_in_a_warning(project):
    template = read(project, UNRESOLVED)
    (hello,) = template.functions
    assert hello.name == "Hello"
    assert hello.timeout_s == 3
    assert dict(hello.environment) == {"TABLE_ARN": "", "TABLE_NAME": "", "DB": "", "REGION_TABLE": "", "FINE": "ok"}
    assert hello.url is not None and hello.url.cors == {"AllowOrigins": ["*"]}
    prefix = "template.yaml: function Hello: "
    empty = "the variable is empty; give its value with --env-vars"
    assert template.warnings == (
        f"{prefix}FunctionName: !ImportValue shared-name cannot be resolved (an export of another stack, which pyrie "
        "cannot see); pyrie names the function Hello",
        f"{prefix}Timeout: !GetAtt Table.Timeout cannot be resolved (an attribute of Table (AWS::DynamoDB::Table), "
        "which only AWS knows); pyrie uses 3",
        f"{prefix}Layers is ignored: pyrie does not unpack layers into /opt, so code and files from them are missing",
        f"{prefix}Environment.Variables.AWS_REGION: AWS_REGION is set by Lambda itself and cannot be set by the "
        "template; ignored",
        f"{prefix}FunctionUrlConfig.Cors is ignored: pyrie's Function URLs send no CORS headers",
        f"{prefix}Environment.Variables.TABLE_ARN: !GetAtt Table.Arn cannot be resolved (an attribute of Table "
        f"(AWS::DynamoDB::Table), which only AWS knows); {empty}",
        f"{prefix}Environment.Variables.TABLE_NAME: !Ref Table cannot be resolved (Table is a resource "
        f"(AWS::DynamoDB::Table) that pyrie does not create); {empty}",
        f"{prefix}Environment.Variables.DB: !Ref DbUrl cannot be resolved (the parameter DbUrl has no Default; give "
        f"it with --parameter-overrides DbUrl=VALUE); {empty}",
        f'{prefix}Environment.Variables.REGION_TABLE: !Sub "${{AWS::Region}}-${{Table}}" cannot be resolved (Table is '
        f"a resource (AWS::DynamoDB::Table) that pyrie does not create); {empty}",
    )
    # the Role, which pyrie does not use, is not resolved and not mentioned
    assert not any("Role" in warning for warning in template.warnings)
    # given a value, a variable is no longer a warning
    given = read(
        project,
        UNRESOLVED,
        overrides=("DbUrl=postgres://db",),
        env_vars={"Hello": {"TABLE_ARN": "arn:x"}},
        environ={"PATH": os.environ["PATH"], "TABLE_NAME": "from-shell"},
    )
    assert dict(given.functions[0].environment) == {
        "TABLE_ARN": "arn:x",
        "TABLE_NAME": "from-shell",
        "DB": "postgres://db",
        "REGION_TABLE": "",
        "FINE": "ok",
    }
    assert [warning for warning in given.warnings if "Environment.Variables" in warning] == [
        f"{prefix}Environment.Variables.AWS_REGION: AWS_REGION is set by Lambda itself and cannot be set by the "
        "template; ignored",
        f'{prefix}Environment.Variables.REGION_TABLE: !Sub "${{AWS::Region}}-${{Table}}" cannot be resolved (Table is '
        f"a resource (AWS::DynamoDB::Table) that pyrie does not create); {empty}",
    ]


def test_every_function_that_cannot_start_is_one_line(project):
    message = refusal(
        project,
        """\
        Resources:
          Java:
            Type: AWS::Serverless::Function
            Properties: {CodeUri: python, Handler: example.Handler::handleRequest, Runtime: java21}
          Images:
            Type: AWS::Serverless::Function
            Properties: {PackageType: Image, ImageUri: repo/app:latest}
          InS3:
            Type: AWS::Serverless::Function
            Properties: {CodeUri: s3://bucket/key.zip, Handler: app.handler, Runtime: python3.12}
          NoHandler:
            Type: AWS::Serverless::Function
            Properties: {CodeUri: python, Runtime: python3.12}
          Missing:
            Type: AWS::Serverless::Function
            Properties: {CodeUri: nowhere, Handler: app.handler, Runtime: python3.12}
        """,
    )
    assert message.splitlines() == [
        "template.yaml: function Java (java21) pyrie cannot start java21 by itself: pass --runtime-command "
        "java21=COMMAND (or --runtime-command java=COMMAND for the whole family), the command that starts its "
        "runtime client",
        "template.yaml: function Images (no Runtime) is a container image (repo/app:latest); pyrie runs code from "
        "local directories and .zip files, not images: run the image with pyrie as its emulator instead",
        "template.yaml: function InS3 (python3.12) has its code in S3 (s3://bucket/key.zip); point CodeUri at a "
        "local directory or .zip, or run `sam build` and give pyrie .aws-sam/build/template.yaml",
        "template.yaml: function NoHandler (python3.12) has no Handler (for example app.handler)",
        f"template.yaml: function Missing (python3.12) has its code at {project / 'nowhere'}, which does not exist",
    ]


JAVA = """\
    Resources:
      Java:
        Type: AWS::Serverless::Function
        Properties: {CodeUri: python, Handler: example.Handler::handleRequest, Runtime: java21}
"""


def test_runtime_command_starts_any_runtime(project):
    sh = shutil.which("sh")
    assert sh is not None
    exact = read(project, JAVA, runtime_commands=("java21=sh -c 'exec java \"$@\"' java",))
    assert exact.functions[0].command == (sh, "-c", 'exec java "$@"', "java", "example.Handler::handleRequest")
    family = read(project, JAVA, runtime_commands=("java=./shell/bootstrap --flag", "ruby=ruby"))
    assert family.functions[0].command == (
        str(project / "shell" / "bootstrap"),
        "--flag",
        "example.Handler::handleRequest",
    )
    assert family.warnings == ("--runtime-command ruby: no function of the template has that runtime",)
    missing = refusal(project, JAVA, runtime_commands=("java21=no-such-java -jar ric.jar",))
    assert missing == (
        "template.yaml: function Java (java21) --runtime-command java21: 'no-such-java' is not an executable file "
        "or on PATH"
    )
    assert "is not RUNTIME=COMMAND" in refusal(project, JAVA, runtime_commands=("java21",))


NODE_TEMPLATE = """\
    Resources:
      Web:
        Type: AWS::Serverless::Function
        Properties: {CodeUri: web, Handler: index.handler, Runtime: nodejs22.x}
"""


def node_ric_package(directory: Path, bin_field: object = "./index.mjs") -> Path:
    """A directory laid out as the aws-lambda-ric package is: package.json naming its entry point."""
    directory.mkdir(parents=True)
    (directory / "package.json").write_text(json.dumps({"name": "aws-lambda-ric", "bin": bin_field}))
    (directory / "index.mjs").write_text("// the runtime client\n")
    return directory


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_node_functions_find_aws_lambda_ric(project, tmp_path):
    (project / "web").mkdir()
    environ = {"PATH": os.environ["PATH"]}
    message = refusal(project, NODE_TEMPLATE, environ=environ)
    assert message.startswith(
        "template.yaml: function Web (nodejs22.x) needs the Node.js runtime client aws-lambda-ric: run "
        f"`npm install aws-lambda-ric` in {project / 'web'}, or set PYRIE_NODE_RIC"
    )
    # on PATH as aws-lambda-ric
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    on_path = executable(bin_dir / "aws-lambda-ric")
    found = read(project, NODE_TEMPLATE, environ={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert found.functions[0].command == (str(on_path), "index.handler")
    # PYRIE_NODE_RIC, the package's directory (relative to where pyrie starts)
    node_ric_package(tmp_path / "shared" / "aws-lambda-ric", bin_field={"aws-lambda-ric": "index.mjs"})
    environ["PYRIE_NODE_RIC"] = "shared/aws-lambda-ric"
    shared = read(project, NODE_TEMPLATE, environ=environ)
    assert shared.functions[0].command == (
        NODE,
        str(tmp_path / "shared" / "aws-lambda-ric" / "index.mjs"),
        "index.handler",
    )
    # the function's own node_modules first
    own = node_ric_package(project / "web" / "node_modules" / "aws-lambda-ric")
    assert read(project, NODE_TEMPLATE, environ=environ).functions[0].command == (
        NODE,
        str(own / "index.mjs"),
        "index.handler",
    )
    without_node = refusal(project, NODE_TEMPLATE, environ={"PATH": str(bin_dir.parent / "empty")})
    assert (
        "needs node on PATH to run aws-lambda-ric: install Node.js, or pass --runtime-command nodejs22.x="
        in without_node
    )


PROVIDED = """\
    Resources:
      Custom:
        Type: AWS::Serverless::Function
        Properties: {CodeUri: custom.zip, Runtime: provided.al2023}
      NoRuntime:
        Type: AWS::Serverless::Function
        Properties: {CodeUri: custom.zip}
"""


def write_zip(path: Path, files: dict[str, tuple[str, int]], links: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, (content, mode) in files.items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (stat.S_IFREG | mode) << 16
            archive.writestr(info, content)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return path


def test_a_zip_code_uri_is_unpacked_privately_and_removed_by_close(project):
    write_zip(
        project / "custom.zip",
        {"bootstrap": ("#!/bin/sh\nexit 0\n", 0o755), "lib/data.txt": ("data", 0o644)},
        links={"current": "lib/data.txt"},
    )
    template = read(project, PROVIDED)
    custom, no_runtime = template.functions
    assert custom.code_dir == no_runtime.code_dir  # one archive, unpacked once
    assert template.scratch_dirs == (custom.code_dir,)
    assert custom.code_source == str(project / "custom.zip")
    code = Path(custom.code_dir)
    assert code.name.startswith("pyrie-Custom-")
    assert stat.S_IMODE(code.stat().st_mode) == 0o700
    assert custom.command == (str(code / "bootstrap"),)
    assert os.access(code / "bootstrap", os.X_OK)
    assert stat.S_IMODE((code / "lib" / "data.txt").stat().st_mode) == 0o644
    assert os.readlink(code / "current") == "lib/data.txt"
    with template:
        pass
    assert not code.exists()


def test_a_zip_that_cannot_be_used_is_refused_and_leaves_nothing(project, tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where pyrie's private directories go
    write_zip(project / "custom.zip", {"bootstrap": ("#!/bin/sh\n", 0o755)}, links={"escape": "../../etc/passwd"})
    message = refusal(project, PROVIDED)
    assert "the symbolic link escape points outside the archive" in message
    assert list(scratch.iterdir()) == []
    write_zip(project / "custom.zip", {"bootstrap": ("#!/bin/sh\n", 0o644)})
    assert "has a bootstrap that is not executable: chmod +x" in refusal(project, PROVIDED)
    (project / "custom.zip").write_text("not a zip")
    assert "which is neither a directory nor a .zip archive" in refusal(project, PROVIDED)
    assert list(scratch.iterdir()) == []


def test_inline_code_is_written_as_lambda_names_it(project):
    template = read(
        project,
        """\
        Resources:
          Inline:
            Type: AWS::Serverless::Function
            Properties:
              Runtime: python3.12
              Handler: index.handler
              InlineCode: |
                def handler(event, context):
                    return "inline"
          Zipped:
            Type: AWS::Lambda::Function
            Properties:
              Runtime: nodejs22.x
              Handler: index.handler
              Code: {ZipFile: "exports.handler = async () => 'inline';"}
        """,
        runtime_commands=("nodejs=sh",),
    )
    inline, zipped = template.functions
    assert (Path(inline.code_dir) / "index.py").read_text().startswith("def handler(event, context):")
    assert (Path(zipped.code_dir) / "index.js").read_text() == "exports.handler = async () => 'inline';"
    assert inline.code_source == str(project / "template.yaml")
    template.close()
    assert not Path(inline.code_dir).exists()


def functions(**properties: str) -> str:
    """A template of python3.12 functions (logical ID -> extra properties, as YAML flow items)."""
    lines = ["Resources:"]
    for logical_id, extra in properties.items():
        lines += [
            f"  {logical_id}:",
            "    Type: AWS::Serverless::Function",
            f"    Properties: {{CodeUri: python, Handler: app.h, Runtime: python3.12{', ' + extra if extra else ''}}}",
        ]
    return "\n".join(lines) + "\n"


URL = "FunctionUrlConfig: {AuthType: NONE}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (functions(A="FunctionName: B", B=""), "template.yaml: the name B is both A's and B's"),
        (
            functions(Web=URL, web=URL),
            "template.yaml: Web and web both have a Function URL and names that differ only in case (web)",
        ),
        ("Resources:\n  T: {Type: AWS::SNS::Topic}\n", "template.yaml: no function to serve"),
        ("Description: nothing\n", "template.yaml: the template has no Resources"),
        (functions(F="Timeout: soon"), "template.yaml: function F: Timeout must be a whole number, not soon"),
        (
            functions(F="Handler: !ImportValue h"),
            "template.yaml: function F: Handler: !ImportValue h cannot be resolved (an export of another stack, which "
            "pyrie cannot see); pyrie needs it to start the function",
        ),
        (
            functions(F="FunctionUrlConfig: {AuthType: NONE, InvokeMode: STREAM}"),
            "template.yaml: function F: FunctionUrlConfig.InvokeMode must be BUFFERED or RESPONSE_STREAM, not 'STREAM'",
        ),
        (
            functions(F="DurableConfig: {RetentionPeriodInDays: 3}"),
            "template.yaml: function F: DurableConfig.ExecutionTimeout is required (seconds, 1 to 31622400)",
        ),
        (
            functions(F='FunctionName: "not a name"'),
            "template.yaml: function F: FunctionName 'not a name' is not a Lambda function name",
        ),
    ],
)
def test_a_template_pyrie_cannot_serve_is_refused_in_one_line(project, text, message):
    found = refusal(project, text)
    assert found.startswith(message), found
    assert "\n" not in found


def test_files_that_cannot_be_read(project):
    with pytest.raises(TemplateError, match=r"^--template: the template .*/missing.yaml does not exist$"):
        read_template("missing.yaml", python_client=RUNTIME_CLIENT, environ={}, cwd=str(project))
    with pytest.raises(TemplateError, match=r"^--template: .*python is a directory, not a file$"):
        read_template("python", python_client=RUNTIME_CLIENT, environ={}, cwd=str(project))
    (project / "template.yaml").write_text(functions(F=""))
    with pytest.raises(TemplateError, match=r"^--env-vars: the file .*/nope.json does not exist$"):
        read_template(
            "template.yaml", env_vars_path="nope.json", python_client=RUNTIME_CLIENT, environ={}, cwd=str(project)
        )
