"""Whether an Invoke payload is JSON, and if not, Lambda's message saying why.

Lambda parses every Invoke and InvokeWithResponseStream payload as JSON before anything runs and refuses one that is
not with 400 ``InvalidRequestContentException``. Its message is Jackson's parse error between a fixed prefix and a
fixed location suffix, as AWS recorded it (LocalStack's AWS-validated snapshot of
``test_lambda_invoke_payload_encoding_error``, lambda-protocols.md §a)::

    Could not parse request body into json: Could not parse payload into json: Unexpected character ((CTRL-CHAR,
    code 153)): expected a valid value (JSON String, Number, Array, Object or token 'null', 'true' or 'false')
     at [Source: REDACTED (`StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION` disabled); line: 1, column: 1]

A payload is checked in one pass of msgspec's JSON reader, which only skips over the values (it builds none): a few
milliseconds for 6 MiB, on the bytes as they came, so a worker's other streams are not held up while a large payload
is checked, and no text copy of it is made (bytes that are not ASCII are checked to be UTF-8 apart). Only a payload it
refuses, or one nested deeper than it follows, is parsed again, by Python's parser, to say why as Jackson would.

pyrie keeps the prefix and the suffix, and words the common errors (a wrong first character, a bad token, bytes that
are not UTF-8, an input that ends too soon, nesting deeper than Jackson's limit of 1000) as Jackson does; other errors
carry Python's description. Line and column are those of Python's parser, which may differ by one from Jackson's. A
document nested a little deeper than 1000 (up to about 1200, depending on the frames in use) is taken. An empty
payload (or whitespace only) is not refused: boto3 sends one when no ``Payload`` is given, and pyrie passes it on as
it is.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import unicodedata
from collections.abc import Iterator
from typing import Final, NoReturn

import msgspec

__all__ = ["json_error"]

PREFIX: Final = "Could not parse request body into json: Could not parse payload into json: "
SOURCE: Final = "REDACTED (`StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION` disabled)"
EXPECTED_VALUE: Final = "(JSON String, Number, Array, Object or token 'null', 'true' or 'false')"
_WHITESPACE: Final = b" \t\r\n"
_BOM: Final = "\ufeff"  # Jackson skips a UTF-8 byte order mark
_BAD_BYTE: Final = re.compile("[\udc80-\udcff]")  # what ``surrogateescape`` makes of a byte that is not UTF-8
# Jackson's StreamReadConstraints: an array or object may be nested in at most this many others.
MAX_NESTING: Final = 1000
NESTING_TOO_DEEP: Final = (
    f"Document nesting depth ({MAX_NESTING + 1}) exceeds the maximum allowed ({MAX_NESTING}, from "
    "`StreamReadConstraints.getMaxNestingDepth()`)"
)
_FRAMES: Final = 200  # frames a request's handler may have in use below the parser
# A string (to its closing quote or the end), else a bracket or a non-standard token: what lies outside strings.
_OUTSIDE_STRINGS: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|([\[{])|([\]}])|(-?Infinity|NaN)', re.DOTALL)


class _NonStandardToken(ValueError):
    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token


def json_error(payload: bytes) -> str | None:
    """``None`` when ``payload`` is JSON (or empty), else the message of Lambda's ``InvalidRequestContentException``."""
    if _is_json(payload):
        return None
    return _why_not_json(payload)


_skip: Final = msgspec.json.Decoder(msgspec.Raw).decode


def _is_json(payload: bytes) -> bool:
    """Whether ``payload`` is one JSON value in UTF-8, surely: ``False`` may also mean "not sure" (a value nested
    deeper than the reader follows, an empty payload, a byte order mark), which ``_why_not_json`` decides."""
    try:
        _skip(payload)
    except (msgspec.DecodeError, RecursionError):
        return False
    if payload.isascii():
        return True
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _why_not_json(payload: bytes) -> str | None:
    if not payload.strip(_WHITESPACE):
        return None
    # Bytes that are not UTF-8 become lone surrogates, so the parser stops at them like at any wrong character;
    # Jackson decodes as it parses, so whichever comes first, a wrong byte or a syntax error, is the one reported.
    text = payload.decode("utf-8", "surrogateescape").removeprefix(_BOM)
    bad_byte = _first_bad_byte(text)
    try:
        # Only validity matters: numbers are not converted (a 5,000-digit integer is valid JSON).
        with _room_for_nesting():
            json.loads(text, parse_int=_ignore, parse_float=_ignore, parse_constant=_non_standard)
    except json.JSONDecodeError as exc:
        # Where the parser stopped reading: an unterminated string is reported at its start, but read to the end.
        stop = len(text) if exc.msg.startswith("Unterminated string") else exc.pos
        if bad_byte is not None and bad_byte < stop:
            return _bad_byte_message(text, bad_byte)
        return _describe(exc)
    except RecursionError:
        return _nested_too_deep(text, bad_byte)
    except _NonStandardToken as exc:
        return _non_standard_message(text, exc.token, bad_byte)
    return None if bad_byte is None else _bad_byte_message(text, bad_byte)


def _nested_too_deep(text: str, bad_byte: int | None) -> str:
    """The message for a document Python's parser could not follow to its depth: Jackson's, at the first array or
    object nested deeper than ``MAX_NESTING`` (brackets inside strings do not count), unless a syntax error or a
    wrong byte comes before it."""
    depth = 0
    for match in _OUTSIDE_STRINGS.finditer(text):
        if match.start(1) >= 0:
            depth += 1
            if depth > MAX_NESTING:
                index = match.start()
                break
        elif match.start(2) >= 0:
            depth -= 1
    else:
        index = 0  # not reached: Python's parser has room for MAX_NESTING levels
    if bad_byte is not None and bad_byte < index:
        return _bad_byte_message(text, bad_byte)
    try:  # what comes before it may hold an error of its own, which Jackson meets first
        with _room_for_nesting():
            json.loads(text[:index], parse_int=_ignore, parse_float=_ignore, parse_constant=_non_standard)
    except json.JSONDecodeError as exc:
        if exc.pos < index and not exc.msg.startswith("Unterminated string"):
            return _describe(exc)
    except _NonStandardToken as exc:
        return _non_standard_message(text, exc.token, bad_byte)
    return _message(NESTING_TOO_DEEP, text, index)


def _non_standard_message(text: str, token: str, bad_byte: int | None) -> str:
    """The message for the first non-standard token (``NaN``, ``Infinity``), found outside strings."""
    index = next((match.start() for match in _OUTSIDE_STRINGS.finditer(text) if match.start(3) >= 0), 0)
    if bad_byte is not None and bad_byte < index:
        return _bad_byte_message(text, bad_byte)
    detail = f"Non-standard token '{token}': enable `JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS` to allow"
    return _message(detail, text, index)


@contextlib.contextmanager
def _room_for_nesting() -> Iterator[None]:
    """Python's parser recurses once per level of nesting: it gets room for Jackson's levels above the frames a
    worker has in use (no other greenlet runs while it parses, so the process-wide limit is safe to move). A
    document nested a little deeper than Jackson allows (up to about ``_FRAMES`` levels more) is taken."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, MAX_NESTING + _FRAMES))
    try:
        yield
    finally:
        sys.setrecursionlimit(limit)


def _ignore(text: str) -> None:
    return None


def _non_standard(token: str) -> NoReturn:
    raise _NonStandardToken(token)


def _describe(exc: json.JSONDecodeError) -> str:
    text, pos = exc.doc, exc.pos
    if pos >= len(text):
        return _message("Unexpected end-of-input", text, pos)
    char = text[pos]
    if _is_bad_byte(char):  # where a token starts, Jackson looks at the byte itself before decoding it
        char = chr(ord(char) - 0xDC00)
    if exc.msg == "Expecting value":
        if char.isalpha():
            token = char
            for index in range(pos + 1, min(len(text), pos + 256)):
                if _is_bad_byte(text[index]):  # Jackson decodes the rest of the token to name it
                    return _bad_byte_message(text, index)
                if not text[index].isalnum():
                    break
                token += text[index]
            return _message(f"Unrecognized token '{token}': was expecting {EXPECTED_VALUE}", text, pos + len(token))
        detail = f"Unexpected character ({_char(char)}): expected a valid value {EXPECTED_VALUE}"
    elif exc.msg.startswith("Unterminated string"):
        return _message("Unexpected end-of-input in VALUE_STRING", text, len(text))
    elif exc.msg.startswith("Invalid control character"):
        detail = (
            f"Illegal unquoted character ({_char(char)}): has to be escaped using backslash to be included in "
            "string value"
        )
    elif exc.msg == "Invalid \\escape" and pos + 1 < len(text):
        detail = f"Unrecognized character escape {_char(text[pos + 1])}"
    elif exc.msg == "Expecting property name enclosed in double quotes":
        detail = f"Unexpected character ({_char(char)}): was expecting double-quote to start field name"
    elif exc.msg == "Expecting ':' delimiter":
        detail = f"Unexpected character ({_char(char)}): was expecting a colon to separate field name and value"
    elif exc.msg == "Expecting ',' delimiter":
        detail = f"Unexpected character ({_char(char)}): was expecting comma to separate entries"
    elif exc.msg == "Extra data":
        detail = f"Unexpected character ({_char(char)}): expected end of input"
    else:
        detail = exc.msg
    return _message(detail, text, pos)


def _is_bad_byte(char: str) -> bool:
    return bool(_BAD_BYTE.fullmatch(char))


def _first_bad_byte(text: str) -> int | None:
    match = _BAD_BYTE.search(text)
    return None if match is None else match.start()


def _bad_byte_message(text: str, index: int) -> str:
    """Jackson's message for bytes that are not UTF-8, located just after the wrong byte, where Jackson's reader
    stands: a byte that cannot start a character is a wrong start byte; after one that can, the first byte that
    does not continue it is a wrong middle byte."""
    byte = ord(text[index]) - 0xDC00
    if 0xC2 <= byte <= 0xF4:
        for following in range(index + 1, len(text)):
            code = ord(text[following])
            if _is_bad_byte(text[following]) and 0x80 <= code - 0xDC00 <= 0xBF:
                continue  # a continuation byte of the broken character
            middle = code - 0xDC00 if _is_bad_byte(text[following]) else text[following].encode("utf-8", "replace")[0]
            return _message(f"Invalid UTF-8 middle byte 0x{middle:02x}", text, following + 1)
        return _message("Unexpected end-of-input in a multi-byte UTF-8 character", text, len(text))
    return _message(f"Invalid UTF-8 start byte 0x{byte:02x}", text, index + 1)


def _char(char: str) -> str:
    """A character as Jackson names it in a message: ``'x' (code 120)``, or ``(CTRL-CHAR, code 10)``."""
    code = ord(char)
    if unicodedata.category(char) == "Cc":
        return f"(CTRL-CHAR, code {code})"
    if code > 255:
        return f"'{char}' (code {code} / 0x{code:x})"
    return f"'{char}' (code {code})"


def _message(detail: str, text: str, index: int) -> str:
    """The whole message, with the line and column (from 1) of ``text[index]``."""
    index = max(0, min(index, len(text)))
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"{PREFIX}{detail}\n at [Source: {SOURCE}; line: {line}, column: {column}]"
