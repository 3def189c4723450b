"""Text pyrie shows the world: platform log lines (supervisor.observe.platform_lines, written by
supervisor.observe.platform_reporter to supervisor.observe.function_log), error bodies (pyrie_core.lambda_errors),
and which function an Invoke names (pyrie_core.function_names)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import pytest

from pyrie_core.function_names import FunctionRef, InvalidFunctionName, parse_function_ref, resolves_to
from pyrie_core.lambda_errors import (
    SNAPSTART_MESSAGE,
    SNAPSTART_TIMEOUT_MESSAGE,
    FunctionError,
    ServiceError,
    error_type_of,
    exit_description,
    function_error_body,
    normalise_error_type,
    response_too_large_body,
    service_error_body,
)
from supervisor.config import FunctionConfig
from supervisor.observe.function_log import FunctionLog
from supervisor.observe.platform_lines import (
    end_line,
    init_report_line,
    report_line,
    restore_report_line,
    start_line,
)
from supervisor.observe.platform_reporter import PlatformReporter
from supervisor.observe.stream_writer import StreamWriter
from supervisor.observe.telemetry_hub import TelemetryHub

RID = "b8953d9f-8b08-4505-93fb-b83d19333e78"


# --- START / END / REPORT (rie-behaviour.md §4.5, Lambda's format) ----------------------------------------------


def test_start_line():
    assert start_line(RID, "$LATEST") == f"START RequestId: {RID} Version: $LATEST"
    assert start_line(RID, "7") == f"START RequestId: {RID} Version: 7"


def test_end_line():
    assert end_line(RID) == f"END RequestId: {RID}"


def test_report_line_without_init_duration():
    assert report_line(RID, 68.56, 3008, 41) == (
        f"REPORT RequestId: {RID}\tDuration: 68.56 ms\tBilled Duration: 69 ms\t"
        "Memory Size: 3008 MB\tMax Memory Used: 41 MB\t"
    )


def test_report_line_with_init_duration_last():
    assert report_line(RID, 2.5, 128, 40, init_duration_ms=95.104) == (
        f"REPORT RequestId: {RID}\tDuration: 2.50 ms\tBilled Duration: 3 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 40 MB\tInit Duration: 95.10 ms\t"
    )


def test_report_line_with_zero_init_duration_still_shows_it():
    assert report_line(RID, 1.0, 128, 40, init_duration_ms=0.0).endswith("\tInit Duration: 0.00 ms\t")


# --- SnapStart's lines (Lambda's CloudWatch text for functions restored from a snapshot) ------------------------


def test_report_line_after_a_restore_as_lambda_writes_it():
    # A REPORT of a restored function in Lambda's own logs (SAM "sam logs --tail" of a SnapStart function):
    # Duration 306.34 ms, Billed Restore Duration 303 ms, Billed Duration 307 + 303 = 610 ms.
    lambdas = (
        f"REPORT RequestId: {RID}\tDuration: 306.34 ms\tBilled Duration: 610 ms\tMemory Size: 3009 MB\t"
        "Max Memory Used: 155 MB\tRestore Duration: 511.25 ms\tBilled Restore Duration: 303 ms\t"
    )
    # pyrie bills the whole restore (no snapshot to load, which Lambda does not bill): 512 ms, and 307 + 512.
    assert report_line(RID, 306.34, 3009, 155, restore_duration_ms=511.25) == lambdas.replace(
        "Billed Duration: 610 ms", "Billed Duration: 819 ms"
    ).replace("Billed Restore Duration: 303 ms", "Billed Restore Duration: 512 ms")


def test_report_line_with_a_tiny_restore():
    assert report_line(RID, 0.4, 128, 40, restore_duration_ms=0.02) == (
        f"REPORT RequestId: {RID}\tDuration: 0.40 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\t"
        "Max Memory Used: 40 MB\tRestore Duration: 0.02 ms\tBilled Restore Duration: 1 ms\t"
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (init_report_line(13316.044, "success"), "INIT_REPORT Init Duration: 13316.04 ms"),
        (
            init_report_line(229.04, "error", "Runtime.BeforeSnapshotError"),
            "INIT_REPORT Init Duration: 229.04 ms\tPhase: init\tStatus: error\tError Type: Runtime.BeforeSnapshotError",
        ),
        (
            init_report_line(10000.09, "timeout", "Sandbox.Timedout"),
            "INIT_REPORT Init Duration: 10000.09 ms\tPhase: init\tStatus: timeout",
        ),
        (restore_report_line(398.97, "success"), "RESTORE_REPORT Restore Duration: 398.97 ms"),
        (
            restore_report_line(1236.04, "error", "Runtime.AfterRestoreError"),
            "RESTORE_REPORT Restore Duration: 1236.04 ms\tStatus: error\tError Type: Runtime.AfterRestoreError",
        ),
        (
            restore_report_line(10000.5, "timeout", "Runtime.Unknown"),
            "RESTORE_REPORT Restore Duration: 10000.50 ms\tStatus: timeout",
        ),
    ],
)
def test_snapstart_phase_report_lines(line, expected):
    assert line == expected


def test_report_line_fields_are_tab_separated_with_a_trailing_tab():
    line = report_line(RID, 10.0, 3008, 50)
    assert line.endswith("\t")
    assert not line.endswith("\t\t")
    assert "\n" not in line
    assert line.split("\t") == [
        f"REPORT RequestId: {RID}",
        "Duration: 10.00 ms",
        "Billed Duration: 10 ms",
        "Memory Size: 3008 MB",
        "Max Memory Used: 50 MB",
        "",
    ]


@pytest.mark.parametrize(
    ("duration", "shown", "billed"),
    [
        (68.56, "68.56", 69),
        (10.0, "10.00", 10),
        (0.0, "0.00", 0),
        (0.001, "0.00", 1),
        (1.001, "1.00", 2),  # billed is the ceiling of the duration, not of the rounded text
        (99.995, "100.00", 100),  # rounded text, ceiling 100
        (2999.9999, "3000.00", 3000),
        (3000.0, "3000.00", 3000),
    ],
)
def test_billed_duration_is_the_ceiling(duration, shown, billed):
    line = report_line(RID, duration, 3008, 1)
    assert f"\tDuration: {shown} ms\t" in line
    assert f"\tBilled Duration: {billed} ms\t" in line


def _written(write: Callable[[PlatformReporter], None]) -> bytes:
    """What ``write`` makes a PlatformReporter put out on its FunctionLog, read back from the pipe it writes to."""
    read_end, write_end = os.pipe()
    try:
        log = FunctionLog(StreamWriter(write_end, 1 << 20, 1 << 20))
        function = FunctionConfig(
            name="f", version="$LATEST", memory_mb=128, timeout_s=3, command=("/b",), cwd="/", handler=None, base_env={}
        )
        write(PlatformReporter(log, function, TelemetryHub()))
        assert log.flush(5.0)
        os.set_blocking(read_end, False)
        return os.read(read_end, 1 << 20)
    finally:
        os.close(read_end)
        os.close(write_end)


def test_function_log_writes_whole_lines():
    def write(reporter: PlatformReporter) -> None:
        reporter.function_output(b"hello", None)
        reporter.function_output(b"world\n", None)
        reporter.function_output(b"", None)
        reporter.extension_output(b"from an extension", None)
        reporter.extension_ready("ext", ["INVOKE"])

    assert (
        _written(write) == b"hello\nworld\n\nfrom an extension\nEXTENSION\tName: ext\tState: Ready\tEvents: [INVOKE]\n"
    )


def test_function_log_survives_a_closed_stdout():
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will ever read: writes fail with EPIPE
    try:
        log = FunctionLog(StreamWriter(write_end, 1 << 20, 1 << 20))
        log.write(b"END RequestId: x\n")  # no exception
        assert log.flush(5.0)
        log.write(b"END RequestId: y\n")  # nor once the writer knows the pipe is broken
    finally:
        os.close(write_end)


# --- error bodies -----------------------------------------------------------------------------------------------


def test_function_error_body_is_byte_exact():
    assert function_error_body("Sandbox.Timedout", f"RequestId: {RID} Error: Task timed out after 1.00 seconds") == (
        b'{"errorType":"Sandbox.Timedout","errorMessage":"RequestId: '
        + RID.encode()
        + b' Error: Task timed out after 1.00 seconds"}'
    )
    assert function_error_body(
        FunctionError.EXIT, f"RequestId: {RID} Error: Runtime exited with error: exit status 127"
    ) == (
        b'{"errorType":"Runtime.ExitError","errorMessage":"RequestId: '
        + RID.encode()
        + b' Error: Runtime exited with error: exit status 127"}'
    )


def test_function_error_body_escapes_json():
    body = function_error_body("Runtime.Unknown", 'a "quoted"\nline')
    assert body == b'{"errorType":"Runtime.Unknown","errorMessage":"a \\"quoted\\"\\nline"}'
    assert json.loads(body) == {"errorType": "Runtime.Unknown", "errorMessage": 'a "quoted"\nline'}


def test_response_too_large_body_is_byte_exact():
    # lambda-protocols.md §a, recorded against AWS: message first, then the type.
    assert response_too_large_body(6291556) == (
        b'{"errorMessage":"Response payload size exceeded maximum allowed payload size (6291556 bytes).",'
        b'"errorType":"Function.ResponseSizeTooLarge"}'
    )


@pytest.mark.parametrize(
    ("code", "message", "extra", "expected"),
    [
        (
            ServiceError.NOT_FOUND,
            "Function not found: arn:aws:lambda:us-east-1:012345678912:function:nope",
            {},
            b'{"Type":"User","Message":"Function not found: arn:aws:lambda:us-east-1:012345678912:function:nope"}',
        ),
        (
            ServiceError.TOO_MANY_REQUESTS,
            "Rate Exceeded.",
            {"Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"},
            b'{"Type":"User","message":"Rate Exceeded.","Reason":"ReservedFunctionConcurrentInvocationLimitExceeded"}',
        ),
        (
            ServiceError.REQUEST_TOO_LARGE,
            "Request must be smaller than 6291456 bytes for the InvokeFunction operation",
            {},
            b'{"Type":"User","message":"Request must be smaller than 6291456 bytes for the InvokeFunction operation"}',
        ),
        (
            ServiceError.INVALID_REQUEST_CONTENT,
            "Could not parse request body into json",
            {},
            b'{"Type":"User","message":"Could not parse request body into json"}',
        ),
        (ServiceError.INVALID_PARAMETER, "bad", {}, b'{"Type":"User","message":"bad"}'),
        (ServiceError.SERVICE, "oops", {}, b'{"Type":"Service","Message":"oops"}'),
        # the SnapStart errors' members are "Type" and "Message" in Lambda's API model (botocore's service-2.json)
        (
            ServiceError.SNAPSTART,
            SNAPSTART_MESSAGE,
            {},
            b'{"Type":"User","Message":"The afterRestore() runtime hook encountered an error. '
            b'For more information, check the Amazon CloudWatch logs."}',
        ),
        (
            ServiceError.SNAPSTART_TIMEOUT,
            SNAPSTART_TIMEOUT_MESSAGE,
            {},
            b'{"Type":"User","Message":"Lambda couldn\'t restore the snapshot within the timeout limit."}',
        ),
    ],
    ids=[
        "not-found",
        "throttled",
        "too-large",
        "invalid-content",
        "invalid-parameter",
        "service",
        "snapstart",
        "snapstart-timeout",
    ],
)
def test_service_error_body_is_byte_exact(code, message, extra, expected):
    assert service_error_body(code, message, **extra) == expected


def test_service_error_codes_are_lambdas():
    assert {error.name: error.value for error in ServiceError} == {
        "NOT_FOUND": "ResourceNotFoundException",
        "TOO_MANY_REQUESTS": "TooManyRequestsException",
        "REQUEST_TOO_LARGE": "RequestEntityTooLargeException",
        "INVALID_REQUEST_CONTENT": "InvalidRequestContentException",
        "INVALID_PARAMETER": "InvalidParameterValueException",
        "SERVICE": "ServiceException",
        "SNAPSTART": "SnapStartException",
        "SNAPSTART_TIMEOUT": "SnapStartTimeoutException",
    }


def test_function_error_types_are_lambdas():
    assert FunctionError.TIMEOUT.value == "Sandbox.Timedout"
    assert FunctionError.EXIT.value == "Runtime.ExitError"
    assert FunctionError.RESPONSE_TOO_LARGE.value == "Function.ResponseSizeTooLarge"
    assert FunctionError.TRUNCATED_RESPONSE.value == "Runtime.TruncatedResponse"
    assert FunctionError.INVALID_RESPONSE_MODE.value == "Runtime.InvalidResponseModeHeader"
    assert FunctionError.UNKNOWN.value == "Runtime.Unknown"


# --- Lambda-Runtime-Function-Error-Type (rie-behaviour.md §6.2) -------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # kept: matches (Runtime|Function)\.[A-Z][a-zA-Z]+
        ("Runtime.ExitError", "Runtime.ExitError"),
        ("Runtime.Unknown", "Runtime.Unknown"),
        ("Function.MyError", "Function.MyError"),
        ("Function.ResponseSizeTooLarge", "Function.ResponseSizeTooLarge"),
        ("Runtime.Ab", "Runtime.Ab"),
        # the pattern is unanchored: a match anywhere keeps the whole value
        ("Custom.Runtime.FooBar", "Custom.Runtime.FooBar"),
        ("Runtime.Foo1", "Runtime.Foo1"),
        ("xFunction.Bad-Thing", "xFunction.Bad-Thing"),
        # not kept, Function. prefix
        ("Function.x", "Function.Unknown"),
        ("Function.A", "Function.Unknown"),
        ("Function.", "Function.Unknown"),
        ("Function.1Error", "Function.Unknown"),
        # not kept, anything else
        ("Runtime.exitError", "Runtime.Unknown"),
        ("Runtime.A", "Runtime.Unknown"),
        ("ValueError", "Runtime.Unknown"),
        ("Unhandled", "Runtime.Unknown"),
        ("runtime.ExitError", "Runtime.Unknown"),
        ("Sandbox.Timedout", "Runtime.Unknown"),
        ("function.MyError", "Runtime.Unknown"),
        (" ", "Runtime.Unknown"),
        # no header at all: nothing to normalise (the caller falls back to the body's errorType)
        (None, None),
        ("", None),
    ],
)
def test_normalise_error_type(value, expected):
    assert normalise_error_type(value) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"errorType":"ValueError","errorMessage":"bad input"}', "ValueError"),
        (b'{"errorMessage": "x", "errorType": "CustomError", "trace": []}', "CustomError"),
        (b'{"errorMessage":"no type"}', None),
        (b'{"errorType":42}', None),
        (b'{"errorType":null}', None),
        (b'["errorType"]', None),
        (b'"Invalid error body"', None),
        (b"", None),
        (b"not json", None),
        (b"\xff\xfe\x00", None),
        (b'{"errorType":"A"', None),
    ],
)
def test_error_type_of(body, expected):
    assert error_type_of(body) == expected


def test_error_type_of_survives_a_deeply_nested_body():
    # A runtime can POST this to /error; runtime_api.runtime_routes.invocation_error calls error_type_of on it.
    assert error_type_of(b"[" * 100_000) is None


# --- runtime exits ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("returncode", "expected"),
    [
        (0, "exit status 0"),
        (1, "exit status 1"),
        (2, "exit status 2"),
        (127, "exit status 127"),
        (255, "exit status 255"),
        (-9, "signal: killed"),
        (-15, "signal: terminated"),
        (-11, "signal: segmentation fault"),
        (-6, "signal: aborted"),
        (-2, "signal: interrupt"),
        (-1, "signal: hangup"),
        (-13, "signal: broken pipe"),
        (-99, "signal: signal 99"),
    ],
)
def test_exit_description(returncode, expected):
    # Go's os.ProcessState.String(), which Lambda's and the Go emulator's messages are made of.
    assert exit_description(returncode) == expected


@pytest.mark.parametrize(
    ("returncode", "expected"),
    [(-24, "signal: CPU time limit exceeded"), (-29, "signal: I/O possible")],
    ids=["SIGXCPU", "SIGIO"],
)
def test_exit_description_keeps_gos_capitals(returncode, expected):
    assert exit_description(returncode) == expected


# --- which function an Invoke names -----------------------------------------------------------------------------


def function(name: str = "test_function", version: str = "$LATEST") -> FunctionConfig:
    return FunctionConfig(
        name=name, version=version, memory_mb=128, timeout_s=3, command=("/b",), cwd="/", handler=None, base_env={}
    )


@pytest.mark.parametrize(
    ("text", "qualifier", "expected"),
    [
        ("function", None, FunctionRef("function", None)),
        ("test_function", None, FunctionRef("test_function", None)),
        ("test_function:$LATEST", None, FunctionRef("test_function", "$LATEST")),
        ("test_function:1", None, FunctionRef("test_function", "1")),
        ("test_function:prod", None, FunctionRef("test_function", "prod")),
        ("test_function", "prod", FunctionRef("test_function", "prod")),
        ("test_function:prod", "prod", FunctionRef("test_function", "prod")),
        ("test_function", "", FunctionRef("test_function", None)),
        (
            "arn:aws:lambda:us-east-1:012345678912:function:test_function",
            None,
            FunctionRef("test_function", None),
        ),
        (
            "arn:aws:lambda:eu-west-3:123456789012:function:test_function:$LATEST",
            None,
            FunctionRef("test_function", "$LATEST"),
        ),
        ("arn:aws-cn:lambda:cn-north-1:123456789012:function:f:v2", None, FunctionRef("f", "v2")),
        ("arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:f", None, FunctionRef("f", None)),
        ("123456789012:function:test_function", None, FunctionRef("test_function", None)),
        ("123456789012:function:test_function:7", None, FunctionRef("test_function", "7")),
        ("test_function:$LATEST.PUBLISHED", None, FunctionRef("test_function", "$LATEST.PUBLISHED")),
    ],
)
def test_parse_function_ref(text, qualifier, expected):
    assert parse_function_ref(text, qualifier) == expected


def test_a_conflicting_qualifier_is_refused():
    with pytest.raises(InvalidFunctionName) as refused:
        parse_function_ref("test_function:1", "2")
    assert str(refused.value) == (
        "The derived qualifier from the function name does not match the specified qualifier."
    )
    with pytest.raises(InvalidFunctionName):
        parse_function_ref("arn:aws:lambda:us-east-1:012345678912:function:test_function:$LATEST", "1")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "bad name",
        "a/b",
        "name:",
        ":1",
        "name:1:2",
        "name:bad qualifier",
        "arn:aws:lambda:us-east-1:12345:function:f",  # account is not 12 digits
        "arn:aws:lambda::123456789012:function:f",  # no region
        "arn:aws:s3:us-east-1:123456789012:function:f",
        "arn:aws:lambda:us-east-1:123456789012:layer:f",
        "x" * 141,
        "na\u00efve",
    ],
)
def test_invalid_function_names(text):
    with pytest.raises(InvalidFunctionName) as refused:
        parse_function_ref(text, None)
    assert str(refused.value).startswith(f"1 validation error detected: Value '{text}' at 'functionName'")


@pytest.mark.parametrize(
    ("text", "qualifier", "version", "expected"),
    [
        ("function", None, "$LATEST", True),
        ("function", "$LATEST", "$LATEST", True),
        ("test_function", None, "$LATEST", True),
        ("test_function:$LATEST", None, "$LATEST", True),
        ("test_function:$LATEST", None, "3", True),
        ("test_function:1", None, "$LATEST", False),
        ("test_function:1", None, "1", True),
        ("test_function:2", None, "1", False),
        ("test_function", "1", "1", True),
        ("test_function:prod", None, "1", False),
        ("other_function", None, "$LATEST", False),
        ("Test_Function", None, "$LATEST", False),
        ("arn:aws:lambda:us-east-1:012345678912:function:test_function", None, "$LATEST", True),
        ("arn:aws:lambda:ap-south-2:999999999999:function:test_function:$LATEST", None, "$LATEST", True),
        ("arn:aws:lambda:us-east-1:012345678912:function:test_function:4", None, "4", True),
        ("arn:aws:lambda:us-east-1:012345678912:function:test_function:4", None, "5", False),
        ("arn:aws:lambda:us-east-1:012345678912:function:other", None, "$LATEST", False),
        ("123456789012:function:test_function", None, "$LATEST", True),
        ("arn:aws:lambda:us-east-1:012345678912:function:function", None, "$LATEST", True),
    ],
)
def test_resolves_to(text, qualifier, version, expected):
    assert resolves_to(parse_function_ref(text, qualifier), "test_function", version) is expected


def test_resolves_to_a_renamed_function():
    assert resolves_to(parse_function_ref("orders", None), "orders", "$LATEST")
    # the Go emulator's fixed name always works
    assert resolves_to(parse_function_ref("function", None), "orders", "$LATEST")
    assert not resolves_to(parse_function_ref("test_function", None), "orders", "$LATEST")
