"""Which Invoke payloads are JSON, and Lambda's wording for those that are not (invoke_api.json_payload)."""

from __future__ import annotations

import json
import sys

import pytest

from invoke_api.json_payload import NESTING_TOO_DEEP, json_error

PREFIX = "Could not parse request body into json: Could not parse payload into json: "
EXPECTED_VALUE = "(JSON String, Number, Array, Object or token 'null', 'true' or 'false')"

# Recorded against AWS (LocalStack's AWS-validated snapshot of test_lambda_invoke_payload_encoding_error): what the
# AWS CLI v2 sends for an inline --payload without --cli-binary-format raw-in-base64-out, and Lambda's answer.
SOURCE = "REDACTED (`StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION` disabled)"
RECORDED = [
    (
        b"n\x87r\x9e\xe9\xb5\xd7I\xee\x9bmt",
        "Could not parse request body into json: Could not parse payload into json: Invalid UTF-8 start byte 0x87\n"
        f" at [Source: {SOURCE}; line: 1, column: 3]",
    ),
    (
        b"\x99\xeb,j\x07\xa1zYh",
        "Could not parse request body into json: Could not parse payload into json: Unexpected character "
        "((CTRL-CHAR, code 153)): expected a valid value (JSON String, Number, Array, Object or token 'null', "
        f"'true' or 'false')\n at [Source: {SOURCE}; line: 1, column: 1]",
    ),
]


def location(line: int, column: int) -> str:
    return f"\n at [Source: {SOURCE}; line: {line}, column: {column}]"


@pytest.mark.parametrize(("payload", "message"), RECORDED)
def test_the_messages_aws_recorded_are_matched_byte_for_byte(payload: bytes, message: str) -> None:
    assert json_error(payload) == message


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b" \r\n\t",
        b"{}",
        b"null",
        b'"just a string"',
        b"-0.5e-3",
        b"1" * 5000,  # more digits than Python converts to an int by default
        b'{"a": [1, {"b": null}], "a": true}',  # a repeated name, as Jackson allows
        '{"text": "h\u00e9llo \u2713 \U0001f600"}'.encode(),
        b"\xef\xbb\xbf[]",  # a UTF-8 byte order mark, which Jackson skips
        b'"\\ud83d\\ude00 \\u0000"',
        json.dumps({"deep": [[[[[[[[[[1]]]]]]]]]], "big": "x" * 100_000}).encode(),
        b"[" * 500 + b'{"a":' * 499 + b"[]" + b"}" * 499 + b"]" * 500,  # arrays and objects, as deep as Jackson goes
        b"[" * 1000 + b"]" * 1000,
    ],
)
def test_json_payloads_pass(payload: bytes) -> None:
    assert json_error(payload) is None


@pytest.mark.parametrize(
    ("payload", "detail", "line", "column"),
    [
        (b"abc", f"Unrecognized token 'abc': was expecting {EXPECTED_VALUE}", 1, 4),
        (b"'test'", f"Unexpected character (''' (code 39)): expected a valid value {EXPECTED_VALUE}", 1, 1),
        (b'{"a":\n  tru}', f"Unrecognized token 'tru': was expecting {EXPECTED_VALUE}", 2, 6),
        (b'{"a":', "Unexpected end-of-input", 1, 6),
        (
            b'{"a" 1}',
            "Unexpected character ('1' (code 49)): was expecting a colon to separate field name and value",
            1,
            6,
        ),
        (b"{a: 1}", "Unexpected character ('a' (code 97)): was expecting double-quote to start field name", 1, 2),
        (b"[1 2]", "Unexpected character ('2' (code 50)): was expecting comma to separate entries", 1, 4),
        (b"{} {}", "Unexpected character ('{' (code 123)): expected end of input", 1, 4),
        (b'"open', "Unexpected end-of-input in VALUE_STRING", 1, 6),
        (
            b'"a\nb"',
            "Illegal unquoted character ((CTRL-CHAR, code 10)): has to be escaped using backslash to be included in "
            "string value",
            1,
            3,
        ),
        (b'"\\q"', "Unrecognized character escape 'q' (code 113)", 1, 2),
        (b"[NaN]", "Non-standard token 'NaN': enable `JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS` to allow", 1, 2),
        (b'{"a": "\x87"}', "Invalid UTF-8 start byte 0x87", 1, 9),  # not UTF-8 inside a string
        (b'["\xc3("]', "Invalid UTF-8 middle byte 0x28", 1, 5),
        (b'["\x87", }', "Invalid UTF-8 start byte 0x87", 1, 4),  # a wrong byte before the syntax error
        (b'{"a":1} \x87', "Unexpected character ((CTRL-CHAR, code 135)): expected end of input", 1, 9),
        (
            b'{"a":"NaN","b":NaN}',
            "Non-standard token 'NaN': enable `JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS` to allow",
            1,
            16,
        ),
        (b"[" * 100_000, NESTING_TOO_DEEP, 1, 1001),
        (
            b'[[{"a":"[[["}, 1 2' + b"[" * 5000,
            "Unexpected character ('2' (code 50)): was expecting comma to separate entries",
            1,
            18,
        ),
        (b'["\x87",' + b"[" * 5000, "Invalid UTF-8 start byte 0x87", 1, 4),
    ],
)
def test_what_is_not_json_is_said_as_lambda_says_it(payload: bytes, detail: str, line: int, column: int) -> None:
    assert json_error(payload) == PREFIX + detail + location(line, column)


def test_an_ordinary_payload_is_checked_without_moving_the_recursion_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    # The process-wide limit is moved only for a document nested deeper than the fast check follows.
    moved: list[int] = []
    monkeypatch.setattr(sys, "setrecursionlimit", moved.append)
    assert json_error(json.dumps({"records": [{"id": i, "name": "é"} for i in range(1000)]}).encode()) is None
    assert json_error(b"[" * 900 + b"]" * 900) is None
    assert moved == []
