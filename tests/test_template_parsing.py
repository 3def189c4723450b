"""Reading a template's text (supervisor.template.document) and resolving its intrinsic functions
(supervisor.template.intrinsics), SAM's Globals merge (supervisor.template.sam_globals) and the command-line values
for parameters (supervisor.template.parameters): pure functions over real template texts."""

from __future__ import annotations

import base64
import textwrap

import pytest

from supervisor.template.document import load_document
from supervisor.template.intrinsics import NO_VALUE, Resolver, Unresolved, render
from supervisor.template.model import TemplateError
from supervisor.template.parameters import (
    parameter_values,
    parse_env_vars,
    parse_parameter_overrides,
)
from supervisor.template.sam_globals import function_globals, merge_globals

# -- the text -----------------------------------------------------------------------------------------------------

EVERY_TAG = textwrap.dedent(
    """\
    AWSTemplateFormatVersion: 2010-09-09
    Values:
      ref: !Ref Stage
      sub: !Sub "${Stage}-table"
      sub_list: !Sub ["${A}-x", {A: !Ref Stage}]
      getatt: !GetAtt Table.StreamArn
      getatt_dotted: !GetAtt Db.Endpoint.Address
      getatt_list: !GetAtt [Table, Arn]
      join: !Join ["-", [a, !Ref Stage]]
      if: !If [IsProd, big, small]
      select: !Select [1, !Split [",", "a,b,c"]]
      findinmap: !FindInMap [Sizes, !Ref Stage, Memory]
      importvalue: !ImportValue shared-table
      base64: !Base64 hello
      getazs: !GetAZs ""
      equals: !Equals [!Ref Stage, prod]
      and: !And [!Condition IsProd, !Not [!Equals [a, b]]]
      or: !Or [!Condition IsProd, !Equals [a, a]]
      cidr: !Cidr [10.0.0.0/16, 2, 8]
      transform: !Transform {Name: AWS::Include, Parameters: {Location: s3://b/k}}
      length: !Length [a, b]
    """
)


def test_every_short_form_becomes_its_long_form():
    values = load_document(EVERY_TAG, "t.yaml")["Values"]
    assert values == {
        "ref": {"Ref": "Stage"},
        "sub": {"Fn::Sub": "${Stage}-table"},
        "sub_list": {"Fn::Sub": ["${A}-x", {"A": {"Ref": "Stage"}}]},
        "getatt": {"Fn::GetAtt": ["Table", "StreamArn"]},
        "getatt_dotted": {"Fn::GetAtt": ["Db", "Endpoint.Address"]},
        "getatt_list": {"Fn::GetAtt": ["Table", "Arn"]},
        "join": {"Fn::Join": ["-", ["a", {"Ref": "Stage"}]]},
        "if": {"Fn::If": ["IsProd", "big", "small"]},
        "select": {"Fn::Select": [1, {"Fn::Split": [",", "a,b,c"]}]},
        "findinmap": {"Fn::FindInMap": ["Sizes", {"Ref": "Stage"}, "Memory"]},
        "importvalue": {"Fn::ImportValue": "shared-table"},
        "base64": {"Fn::Base64": "hello"},
        "getazs": {"Fn::GetAZs": ""},
        "equals": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]},
        "and": {"Fn::And": [{"Condition": "IsProd"}, {"Fn::Not": [{"Fn::Equals": ["a", "b"]}]}]},
        "or": {"Fn::Or": [{"Condition": "IsProd"}, {"Fn::Equals": ["a", "a"]}]},
        "cidr": {"Fn::Cidr": ["10.0.0.0/16", 2, 8]},
        "transform": {"Fn::Transform": {"Name": "AWS::Include", "Parameters": {"Location": "s3://b/k"}}},
        "length": {"Fn::Length": ["a", "b"]},
    }


def test_keys_are_the_text_written_and_anchors_merge():
    text = textwrap.dedent(
        """\
        Base: &base {ON: yes, 1: one, null: x}
        Merged:
          <<: *base
          Own: !Ref Stage
        """
    )
    document = load_document(text, "t.yaml")
    assert document["Base"] == {"ON": True, "1": "one", "null": "x"}
    assert document["Merged"] == {"ON": True, "1": "one", "null": "x", "Own": {"Ref": "Stage"}}


def test_dates_stay_strings_and_json_reads_as_json():
    assert load_document("AWSTemplateFormatVersion: 2010-09-09\nResources: {}\n", "t.yaml") == {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {},
    }
    text = '{"Resources": {"F": {"Type": "AWS::Lambda::Function", "Properties": {"Timeout": 5}}}}'
    assert load_document(text, "t.json")["Resources"]["F"]["Properties"] == {"Timeout": 5}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Resources:\n  F: [a\n", "t.yaml:3:1: not valid YAML"),
        ("Resources:\n  F: a\n   b: c\n", "t.yaml:3:5: not valid YAML: mapping values are not allowed"),
        ('{"Resources": {"F": }', "t.yaml:1:21: not valid JSON"),
        ("- a\n- b\n", "t.yaml: not a template"),
        ("", "t.yaml: not a template"),
    ],
)
def test_a_malformed_template_is_one_line_with_where(text, expected):
    with pytest.raises(TemplateError) as refused:
        load_document(text, "t.yaml")
    message = str(refused.value)
    assert message.startswith(expected), message
    assert "\n" not in message


# -- intrinsic functions ------------------------------------------------------------------------------------------

RESOURCES = {
    "Hello": {"Type": "AWS::Serverless::Function", "Properties": {"FunctionName": "hello-fn"}},
    "Table": {"Type": "AWS::DynamoDB::Table"},
}


def resolver(**parameters: object) -> Resolver:
    return Resolver(
        parameters={"Stage": "prod", "Subnets": ["a", "b"], **parameters},
        pseudo={"AWS::Region": "eu-west-1", "AWS::AccountId": "123456789012", "AWS::NoValue": NO_VALUE},
        mappings={"Sizes": {"prod": {"Memory": 1024}, "dev": {"Memory": 128}}},
        conditions={
            "IsProd": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]},
            "IsDev": {"Fn::Not": [{"Condition": "IsProd"}]},
            "Unknown": {"Fn::Equals": [{"Fn::ImportValue": "x"}, "y"]},
            "Loop": {"Condition": "Loop"},
        },
        resources=RESOURCES,
        function_name=lambda logical_id: "hello-fn" if logical_id == "Hello" else None,
        function_arn=lambda logical_id: f"arn:aws:lambda:us-east-1:012345678912:function:{logical_id}",
    )


def resolved(text: str, **parameters: object) -> object:
    return resolver(**parameters).resolve(load_document(f"Value: {text}\n", "t.yaml")["Value"])


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("!Ref Stage", "prod"),
        ("!Ref Subnets", ["a", "b"]),
        ("!Ref AWS::Region", "eu-west-1"),
        ("!Ref Hello", "hello-fn"),
        ("!GetAtt Hello.Arn", "arn:aws:lambda:us-east-1:012345678912:function:Hello"),
        ('!Sub "${Stage}-${AWS::Region}-${AWS::AccountId}"', "prod-eu-west-1-123456789012"),
        (
            '!Sub "arn:${Hello.Arn} ${Hello} ${!Literal}"',
            "arn:arn:aws:lambda:us-east-1:012345678912:function:Hello hello-fn ${Literal}",
        ),
        ('!Sub ["${Name}.${Stage}", {Name: !Join ["", [x, !Ref Stage]]}]', "xprod.prod"),
        ('!Join [":", [a, 1, true]]', "a:1:true"),
        ('!Join [",", !Ref Subnets]', "a,b"),
        ('!Select [2, !Split ["/", "a/b/c"]]', "c"),
        ("!Select [0, !Ref Subnets]", "a"),
        ("!FindInMap [Sizes, !Ref Stage, Memory]", 1024),
        ("!If [IsProd, big, small]", "big"),
        ("!If [IsDev, big, small]", "small"),
        ("!Base64 hi", base64.b64encode(b"hi").decode()),
        ("!Cidr [10.0.0.0/16, 3, 8]", ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"]),
        ("!Equals [!Ref Stage, prod]", True),
        ("!And [!Condition IsProd, !Not [!Equals [1, 2]]]", True),
        ("!Or [!Condition IsDev, !Equals [1, 2]]", False),
        ("!Length [a, b, c]", 3),
        ("!ToJsonString {a: 1}", '{"a":1}'),
        ("[a, !If [IsDev, b, !Ref AWS::NoValue], c]", ["a", "c"]),
        ("{Keep: 1, Drop: !If [IsProd, !Ref AWS::NoValue, 2]}", {"Keep": 1}),
    ],
)
def test_what_resolves(text, value):
    assert resolved(text) == value


@pytest.mark.parametrize(
    ("text", "expression", "reason"),
    [
        ("!GetAtt Table.Arn", "!GetAtt Table.Arn", "an attribute of Table (AWS::DynamoDB::Table)"),
        ("!Ref Table", "!Ref Table", "Table is a resource (AWS::DynamoDB::Table) that pyrie does not create"),
        ("!Ref Nope", "!Ref Nope", "the template has no parameter or resource Nope"),
        ("!ImportValue shared", "!ImportValue shared", "an export of another stack"),
        ('!GetAZs ""', '!GetAZs ""', "Availability Zones"),
        ("!Transform {Name: M}", "!Transform {Name: M}", "a macro"),
        ('!Sub "${Table.Arn}/index"', '!Sub "${Table.Arn}/index"', "an attribute of Table"),
        ('!Join ["", [x, !ImportValue y]]', '!Join ["", [x, !ImportValue y]]', "an export of another stack"),
        ("!If [Unknown, a, b]", "!If [Unknown, a, b]", "an export of another stack"),
        ("!If [Loop, a, b]", "!If [Loop, a, b]", "the condition Loop depends on itself"),
        ("!If [Missing, a, b]", "!If [Missing, a, b]", "the template has no condition Missing"),
        (
            "!FindInMap [Sizes, test, Memory]",
            "!FindInMap [Sizes, test, Memory]",
            "the mapping Sizes has no test.Memory",
        ),
        ("'{{resolve:ssm:/db/url}}'", '"{{resolve:ssm:/db/url}}"', "a dynamic reference"),
        ("!Select [5, [a]]", "!Select [5, [a]]", "malformed: index 5 is not within the 1 values"),
        ("!Frobnicate x", "!Frobnicate x", "pyrie does not know the intrinsic function Fn::Frobnicate"),
    ],
)
def test_what_does_not_resolve_is_named(text, expression, reason):
    value = resolved(text)
    assert isinstance(value, Unresolved), value
    assert value.expression == expression
    assert value.reason.startswith(reason), value.reason


def test_an_unresolved_part_stays_where_it_is():
    value = resolved("{A: !Ref Stage, B: [x, !ImportValue y]}")
    assert value["A"] == "prod"
    assert value["B"][0] == "x"
    assert isinstance(value["B"][1], Unresolved)


def test_a_parameter_without_value_carries_its_reason():
    missing = Unresolved("!Ref Db", "the parameter Db has no Default")
    value = resolved('!Sub "postgres://${Db}"', Db=missing)
    assert isinstance(value, Unresolved)
    assert value.expression == '!Sub "postgres://${Db}"'
    assert value.reason == "the parameter Db has no Default"


def test_render_is_the_short_form():
    assert render({"Fn::GetAtt": ["A", "B.C"]}) == "!GetAtt A.B.C"
    assert render({"Fn::Join": ["", ["a", {"Ref": "B"}]]}) == '!Join ["", [a, !Ref B]]'
    assert render({"Fn::Sub": "x" * 300}).endswith("…")


# -- Globals -----------------------------------------------------------------------------------------------------

GLOBALS = textwrap.dedent(
    """\
    Globals:
      Function:
        Runtime: python3.12
        Timeout: 10
        Layers: [global-layer]
        Environment:
          Variables:
            TABLE: global-table
            LEVEL: info
        Events: {}
    """
)


def test_globals_merge_as_sam_merges_them():
    globals_, warnings = function_globals(load_document(GLOBALS, "t.yaml"), "t.yaml")
    assert warnings == ["t.yaml: Globals: Function: Events is not a property SAM takes from Globals; pyrie ignores it"]
    local = {
        "Timeout": {"Ref": "T"},  # an intrinsic is a primitive: the function's own wins
        "Layers": ["own-layer"],
        "Environment": {"Variables": {"LEVEL": "debug", "OWN": "1"}},
    }
    assert merge_globals(globals_, local, None, "f") == {
        "Runtime": "python3.12",
        "Timeout": {"Ref": "T"},
        "Layers": ["global-layer", "own-layer"],
        "Environment": {"Variables": {"TABLE": "global-table", "LEVEL": "debug", "OWN": "1"}},
    }
    assert merge_globals(globals_, {"Handler": "h"}, "*", "f") == {"Handler": "h"}
    assert merge_globals(globals_, {}, ["Environment", "Layers"], "f") == {"Runtime": "python3.12", "Timeout": 10}
    with pytest.raises(TemplateError, match="IgnoreGlobals must be"):
        merge_globals(globals_, {}, 3, "f")


# -- parameters, overrides, --env-vars ---------------------------------------------------------------------------


def test_parameter_overrides_as_sam_cli_takes_them():
    assert parse_parameter_overrides(
        [
            "Stage=prod Greeting='hello world'",
            'ParameterKey=Url,ParameterValue="http://x/?a=b&c=d" ParameterKey=Subnets,ParameterValue=a,b',
            "Empty= Quoted=it\\ works",
            "Stage=qa",
            "AWS::Region=eu-west-1",
        ]
    ) == {
        "Stage": "qa",
        "Greeting": "hello world",
        "Url": "http://x/?a=b&c=d",
        "Subnets": "a,b",
        "Empty": "",
        "Quoted": "it works",
        "AWS::Region": "eu-west-1",
    }


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("Stage", "'Stage' is not KEY=VALUE"),
        ("=x", "'=x' has no parameter name"),
        ("A='open", "No closing quotation"),
    ],
)
def test_a_bad_override_is_refused(argument, message):
    with pytest.raises(TemplateError, match=message):
        parse_parameter_overrides([argument])


PARAMETERS = textwrap.dedent(
    """\
    Parameters:
      Stage: {Type: String, Default: dev, AllowedValues: [dev, prod]}
      Count: {Type: Number, Default: 3, MinValue: 1, MaxValue: 10}
      Subnets: {Type: CommaDelimitedList, Default: "a, b"}
      Ports: {Type: "List<Number>", Default: [80, 443]}
      Name: {Type: String, AllowedPattern: "[a-z]+", ConstraintDescription: lower-case letters only}
      Secret: {Type: "AWS::SSM::Parameter::Value<String>", Default: /app/secret}
      Flag: {Type: String, Default: true}
    """
)


def declared() -> dict:
    return load_document(PARAMETERS, "t.yaml")["Parameters"]


def test_parameters_take_their_default_or_override():
    values, warnings = parameter_values(declared(), {"Stage": "prod", "Name": "abc", "Nope": "x"}, "t.yaml")
    assert {key: value for key, value in values.items() if not isinstance(value, Unresolved)} == {
        "Stage": "prod",
        "Count": "3",
        "Subnets": ["a", "b"],
        "Ports": ["80", "443"],
        "Name": "abc",
        "Flag": "true",
    }
    assert isinstance(values["Secret"], Unresolved)
    assert "SSM parameter /app/secret" in values["Secret"].reason
    assert warnings == ["--parameter-overrides: t.yaml declares no parameter Nope; it is ignored"]
    given, _ = parameter_values(declared(), {"Secret": "s3cr3t"}, "t.yaml")
    assert given["Secret"] == "s3cr3t"
    assert isinstance(given["Name"], Unresolved)
    assert "has no Default; give it with --parameter-overrides Name=VALUE" in given["Name"].reason


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"Stage": "qa"}, "--parameter-overrides Stage: 'qa' is not one of the AllowedValues (dev, prod)"),
        ({"Count": "many"}, "--parameter-overrides Count: 'many' is not a number"),
        ({"Count": "11"}, "--parameter-overrides Count: 11 breaks MaxValue 10"),
        ({"Ports": "80,http"}, "--parameter-overrides Ports: 'http' is not a number"),
        ({"Name": "ABC"}, "'ABC' does not match the AllowedPattern: lower-case letters only"),
    ],
)
def test_a_value_that_breaks_its_constraints_is_refused(overrides, message):
    with pytest.raises(TemplateError) as refused:
        parameter_values(declared(), overrides, "t.yaml")
    assert message in str(refused.value)


def test_env_vars_file_is_sams():
    parsed = parse_env_vars(
        '{"Parameters": {"A": "1", "N": 2, "B": true, "X": null}, "Hello": {"C": "3", "L": [1]}}', "env.json"
    )
    assert parsed.shared == {"A": "1", "N": "2", "B": "true", "X": ""}
    assert parsed.for_function("Hello", None) == {"C": "3", "L": ""}
    assert parsed.for_function("Other", "Hello") == {"C": "3", "L": ""}
    assert parsed.for_function("Other", None) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"Hello": "x"}', "--env-vars env.json: the value of 'Hello' must be an object of variables"),
        ("[1]", "--env-vars env.json: expected an object"),
        ('{"Hello": {', "--env-vars env.json:1:12: not valid JSON"),
    ],
)
def test_a_bad_env_vars_file_is_refused(text, message):
    with pytest.raises(TemplateError) as refused:
        parse_env_vars(text, "env.json")
    assert str(refused.value).startswith(message), str(refused.value)
