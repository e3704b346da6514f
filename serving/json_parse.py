"""Request bodies parsed as TF Serving 2.16.1 parses them: rapidjson 1.1.0 with its flags.

Same accepted literals (NaN, Infinity...), the same numbers (rapidjson's own decimal conversion),
the same error texts and byte offsets, trailing data refused. Python's C parser does the common
case; a port of rapidjson's reader decides whatever could come out differently. Unlike TF
Serving, the work one body can cause is bounded (`MAX_JSON_VALUES`, `MAX_JSON_DEPTH`) and
nothing here recurses on the body's nesting depth.
"""

import json
import re
from typing import Any

from serving.errors import ServingError
from serving.json_writer import JsonObject, debug_string


def _invalid(message: str) -> ServingError:
    return ServingError.invalid_argument(message)


# JSON values (numbers, strings, true/false/null, arrays and objects; object keys excluded)
# one request may hold. TF Serving has no such bound; without it a 16 KB gzip body inflating
# to 16 MiB of `[[],[],...]` (5.6M values) costs 36 s of CPU and 3 GB. At 1M values the
# costliest accepted request (1M empty arrays) takes about half a second and 80 MB, so eight
# REST threads cannot hold more than a few hundred MB between them; a million values is still
# thousands of taxi rows (bench/json_limits_probe.py). Past the bound: RESOURCE_EXHAUSTED (HTTP
# 429), TF's code for requests too large to process (gRPC's message size limit, OOM), as for
# --max_request_bytes.
MAX_JSON_VALUES = 1_000_000
# Nesting levels one request may use. TF Serving 2.16.1 parses recursively and accepts what
# its thread stack allows (tens of thousands of levels; 2.18 parses iteratively); parsing
# here never recurses, and this bounds the slow exact parser deep documents need (documents
# shallower than Python's recursion limit are parsed in C and never reach it).
MAX_JSON_DEPTH = 100_000


# --- parsing: rapidjson 1.1.0 as ParseJson calls it (json_tensor.cc:419-448 in 2.16.1) -------
#
# ParseStream<kParseNanAndInfFlag> over EncodedInputStream<UTF8<>, MemoryStream>: no
# kParseStopWhenDoneFlag (trailing data is an error), no kParseFullPrecisionFlag (rapidjson's
# own fast decimal conversion, not correctly rounded), no encoding validation (string bytes are
# copied as they are), and the stream reads a NUL byte as its end. Strings keep their bytes as
# UTF-8 with invalid bytes as surrogate escapes (`json_writer.to_bytes` gives the bytes back).


class _ParseError(Exception):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


class _NeedsExactParse(Exception):
    """The fast parser met something only the rapidjson port decides exactly."""


_WHITESPACE = re.compile(rb"[ \t\n\r]*")
_PLAIN_STRING_BYTES = re.compile(rb'[^"\\\x00-\x1f]*')
_STRING_ESCAPES = {
    0x22: 0x22, 0x5C: 0x5C, 0x2F: 0x2F, 0x62: 0x08, 0x66: 0x0C, 0x6E: 0x0A, 0x72: 0x0D, 0x74: 0x09,
}  # fmt: skip
_HEX_DIGITS = {byte: int(chr(byte), 16) for byte in b"0123456789abcdefABCDEF"}
_POW10 = [float(f"1e{n}") for n in range(309)]  # internal/pow10.h
_NAN, _INF = float("nan"), float("inf")

# error/en.h GetParseError_En texts.
_EMPTY = "The document is empty."
_NOT_SINGULAR = "The document root must not be followed by other values."
_VALUE_INVALID = "Invalid value."
_MISS_NAME = "Missing a name for object member."
_MISS_COLON = "Missing a colon after a name of object member."
_MISS_COMMA_CURLY = "Missing a comma or '}' after an object member."
_MISS_COMMA_SQUARE = "Missing a comma or ']' after an array element."
_BAD_HEX = "Incorrect hex digit after \\u escape in string."
_BAD_SURROGATE = "The surrogate pair in string is invalid."
_BAD_ESCAPE = "Invalid escape character in string."
_MISS_QUOTE = "Missing a closing quotation mark in string."
_TOO_BIG = "Number too big to be stored in double."
_MISS_FRACTION = "Miss fraction part in number."
_MISS_EXPONENT = "Miss exponent in number."


def _bom_length(data: bytes) -> int:
    """EncodedInputStream<UTF8<>, MemoryStream> drops EF, BB and BF one by one if present."""
    index = 0
    for byte in (0xEF, 0xBB, 0xBF):
        if index < len(data) and data[index] == byte:
            index += 1
    return index


def _strtod_normal_precision(significand: float, power: int) -> float:
    """internal/strtod.h StrtodNormalPrecision (with FastPath)."""

    def fast_path(value: float, exponent: int) -> float:
        if exponent < -308:
            return 0.0
        if exponent >= 0:
            return value * _POW10[exponent]
        return value / _POW10[-exponent]

    if power < -308:
        return fast_path(fast_path(significand, -308), power + 308)
    return fast_path(significand, power)


def _read_number(data: bytes, index: int) -> tuple[int | float, int]:
    """reader.h ParseNumber (1.1.0, kParseNanAndInfFlag only): (value, end) or _ParseError.

    Integers that fit rapidjson's Int/Uint/Int64/Uint64 stay Python ints; everything else is
    the double rapidjson computes, quirks included ("NaN.5" is 0.5, "NInf" is infinity).
    """
    size = len(data)

    def peek(position: int) -> int:
        return data[position] if position < size else 0

    start = index
    minus = peek(index) == 0x2D
    if minus:
        index += 1
    small = big = significant = 0
    value = 0.0
    use_64bit = use_double = nan_or_inf = False
    char = peek(index)
    if char == 0x30:
        index += 1
    elif 0x31 <= char <= 0x39:
        small = char - 0x30
        index += 1
        limit, last = (214748364, 0x38) if minus else (429496729, 0x35)
        while 0x30 <= (char := peek(index)) <= 0x39:
            if small >= limit and (small != limit or char > last):
                big, use_64bit = small, True
                break
            small = small * 10 + char - 0x30
            index += 1
            significant += 1
    elif char in (0x49, 0x4E):  # 'I', 'N': Consume() chains keep what they matched
        nan_or_inf = True
        matched = True
        for expected in b"NaN":
            if peek(index) != expected:
                matched = False
                break
            index += 1
        if matched:
            value = _NAN
        else:
            for expected in b"Inf":
                if peek(index) != expected:
                    raise _ParseError(_VALUE_INVALID, index)
                index += 1
            value = -_INF if minus else _INF
            if peek(index) == 0x69:  # 'i' must start "inity"
                for expected in b"inity":
                    if peek(index) != expected:
                        raise _ParseError(_VALUE_INVALID, index)
                    index += 1
    else:
        raise _ParseError(_VALUE_INVALID, index)

    if use_64bit:
        limit, last = (0x0CCCCCCCCCCCCCCC, 0x38) if minus else (0x1999999999999999, 0x35)
        while 0x30 <= (char := peek(index)) <= 0x39:
            if big >= limit and (big != limit or char > last):
                value, use_double = float(big), True
                break
            big = big * 10 + char - 0x30
            index += 1
            significant += 1
    if use_double:
        while 0x30 <= (char := peek(index)) <= 0x39:
            if value >= 1.7976931348623157e307:
                raise _ParseError(_TOO_BIG, start)
            value = value * 10 + (char - 0x30)
            index += 1

    exp_frac = 0
    if peek(index) == 0x2E:
        index += 1
        if not 0x30 <= peek(index) <= 0x39:
            raise _ParseError(_MISS_FRACTION, index)
        if not use_double:
            if not use_64bit:
                big = small
            while 0x30 <= (char := peek(index)) <= 0x39:
                if big > 0x1FFFFFFFFFFFFF:
                    break
                big = big * 10 + char - 0x30
                index += 1
                exp_frac -= 1
                if big:
                    significant += 1
            value, use_double = float(big), True
        while 0x30 <= (char := peek(index)) <= 0x39:
            index += 1
            if significant < 17:
                value = value * 10.0 + (char - 0x30)
                exp_frac -= 1
                if value > 0.0:
                    significant += 1

    exponent = 0
    if peek(index) in (0x65, 0x45):
        index += 1
        if not use_double:
            value, use_double = float(big if use_64bit else small), True
        exp_minus = False
        if peek(index) == 0x2B:
            index += 1
        elif peek(index) == 0x2D:
            index += 1
            exp_minus = True
        char = peek(index)
        if not 0x30 <= char <= 0x39:
            raise _ParseError(_MISS_EXPONENT, index)
        exponent = char - 0x30
        index += 1
        if exp_minus:
            while 0x30 <= (char := peek(index)) <= 0x39:
                exponent = exponent * 10 + char - 0x30
                index += 1
                if exponent >= 214748364:  # the rest of the exponent is skipped
                    while 0x30 <= peek(index) <= 0x39:
                        index += 1
            exponent = -exponent
        else:
            max_exponent = 308 - exp_frac
            while 0x30 <= (char := peek(index)) <= 0x39:
                exponent = exponent * 10 + char - 0x30
                index += 1
                if exponent > max_exponent:
                    raise _ParseError(_TOO_BIG, start)

    if use_double:
        value = _strtod_normal_precision(value, exponent + exp_frac)
        return (-value if minus else value), index
    if nan_or_inf:
        return value, index
    number = big if use_64bit else small
    return (-number if minus else number), index


def _read_hex4(data: bytes, index: int, escape_offset: int) -> tuple[int, int]:
    codepoint = 0
    for position in range(index, index + 4):
        digit = _HEX_DIGITS.get(data[position] if position < len(data) else 0)
        if digit is None:
            raise _ParseError(_BAD_HEX, escape_offset)
        codepoint = codepoint * 16 + digit
    return codepoint, index + 4


def _read_string(data: bytes, index: int) -> tuple[str, int]:
    """reader.h ParseString/ParseStringToStream from the opening quote at `index`."""
    index += 1
    end = _PLAIN_STRING_BYTES.match(data, index).end()
    if end < len(data) and data[end] == 0x22:
        return data[index:end].decode("utf-8", "surrogateescape"), end + 1
    out = bytearray(data[index:end])
    index = end
    while True:
        char = data[index] if index < len(data) else 0
        if char == 0x5C:
            escape_offset = index
            index += 1
            escaped = data[index] if index < len(data) else 0
            if escaped in _STRING_ESCAPES:
                out.append(_STRING_ESCAPES[escaped])
                index += 1
            elif escaped == 0x75:
                codepoint, index = _read_hex4(data, index + 1, escape_offset)
                if 0xD800 <= codepoint <= 0xDBFF:
                    if data[index : index + 2] != b"\\u":
                        raise _ParseError(_BAD_SURROGATE, escape_offset)
                    low, index = _read_hex4(data, index + 2, escape_offset)
                    if not 0xDC00 <= low <= 0xDFFF:
                        raise _ParseError(_BAD_SURROGATE, escape_offset)
                    codepoint = (((codepoint - 0xD800) << 10) | (low - 0xDC00)) + 0x10000
                out += chr(codepoint).encode("utf-8", "surrogatepass")
            else:
                raise _ParseError(_BAD_ESCAPE, escape_offset)
        elif char == 0x22:
            return bytes(out).decode("utf-8", "surrogateescape"), index + 1
        elif char < 0x20:
            raise _ParseError(_MISS_QUOTE if char == 0 else _BAD_ESCAPE, index)
        else:
            end = _PLAIN_STRING_BYTES.match(data, index).end()
            out += data[index:end]
            index = end


def _make_object(pairs: list[tuple[str, Any]]) -> dict:
    value = dict(pairs)
    return value if len(value) == len(pairs) else JsonObject(pairs)


def _too_many_values(limit: int) -> ServingError:
    return ServingError(
        "RESOURCE_EXHAUSTED",
        f"JSON request holds more than {limit} values (numbers, strings, literals, arrays and "
        "objects); send fewer instances per request",
    )


def _too_deep(limit: int) -> ServingError:
    return ServingError(
        "RESOURCE_EXHAUSTED",
        f"JSON request nests arrays and objects more than {limit} levels deep; flatten the request",
    )


# Runs of array elements or object members up to three levels deep that the exact parser
# hands to the C scanner in one call: the bulk of a large malformed request then costs C time,
# not a Python step per token. Numbers must end where rapidjson's would ("3e" or "1." fall out
# of the run and get the exact per-token error). Atomic groups keep the regex from backtracking.
_WS = rb"[ \t\n\r]*+"
_KEY = rb'"[^"\\\x00-\x1f]*+"'
_SCALAR = (
    rb"(?>-?(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?+(?:[eE][-+]?[0-9]++)?+(?![0-9.eE])"
    rb"|" + _KEY + rb"|true|false|null)"
)


def _nested(element: bytes) -> bytes:
    array = rb"\[" + _WS + rb"(?:" + element + rb"(?:" + _WS + rb"," + _WS + element + rb")*+)?+"
    member = _KEY + _WS + rb":" + _WS + element
    obj = rb"\{" + _WS + rb"(?:" + member + rb"(?:" + _WS + rb"," + _WS + member + rb")*+)?+"
    return rb"(?>" + _SCALAR + rb"|" + array + _WS + rb"\]|" + obj + _WS + rb"\})"


_ELEMENT = _nested(_nested(_nested(_SCALAR)))
_ELEMENT_RUN = re.compile(_ELEMENT + rb"(?:" + _WS + rb"," + _WS + _ELEMENT + rb")*+")
_MEMBER = _KEY + _WS + rb":" + _WS + _ELEMENT
_MEMBER_RUN = re.compile(_MEMBER + rb"(?:" + _WS + rb"," + _WS + _MEMBER + rb")*+")
_OPEN_ARRAYS = re.compile(rb"\[(?:" + _WS + rb"\[)*+")
_MIN_RUN_BYTES = 64
_NO_VALUE = object()
_WHITESPACE_BYTES = frozenset(b" \t\n\r")


def _run(data: bytes, index: int, members: bool) -> tuple[list | None, int, int] | None:
    """(values or (key, value) pairs, end, value count bound) of a run at `index`; values None
    when the run holds a number only the exact parser may judge; None when there is no run."""
    match = (_MEMBER_RUN if members else _ELEMENT_RUN).match(data, index)
    if match is None or match.end() - index < _MIN_RUN_BYTES:
        return None
    chunk = data[index : match.end()]
    decoder = _NUMBER_DECODER if _RISKY_NUMBER.search(chunk) else _PLAIN_DECODER
    text = chunk.decode("utf-8", "surrogateescape")
    try:
        if members:
            parsed = decoder.decode("{" + text + "}")
            values = parsed.members if type(parsed) is JsonObject else list(parsed.items())
        else:
            values = decoder.decode("[" + text + "]")
    except (ValueError, RecursionError, _NeedsExactParse):
        return None, match.end(), 0
    bound = chunk.count(b",") + chunk.count(b"[") + chunk.count(b"{") + 1
    return values, match.end(), bound


def _parse_exact(data: bytes, max_values: int, max_depth: int) -> Any:
    """rapidjson 1.1.0's recursive descent (reader.h ParseValue and friends), without recursion."""
    size = len(data)
    skip = _WHITESPACE.match
    whitespace = _WHITESPACE_BYTES
    index = skip(data, _bom_length(data)).end()
    if index >= size or data[index] == 0:
        raise _ParseError(_EMPTY, index)

    def read_key(index: int) -> tuple[str, int]:
        if index >= size or data[index] != 0x22:
            raise _ParseError(_MISS_NAME, index)
        key, index = _read_string(data, index)
        index = skip(data, index).end()
        if index >= size or data[index] != 0x3A:
            raise _ParseError(_MISS_COLON, index)
        return key, skip(data, index + 1).end()

    def read_literal(index: int, text: bytes, value: Any) -> tuple[Any, int]:
        for position, expected in enumerate(text[1:], start=index + 1):
            if position >= size or data[position] != expected:
                raise _ParseError(_VALUE_INVALID, position)
        return value, index + len(text)

    def finish_root(value: Any, index: int) -> Any:
        index = skip(data, index).end()
        if index < size and data[index] != 0:
            raise _ParseError(_NOT_SINGULAR, index)
        return value

    stack: list[list] = []  # [items, is_object, pending key]
    count = 0
    no_runs_before = 0  # where a run failed to convert, parse token by token

    def take_run(index: int, members: bool) -> tuple[list, int] | None:
        nonlocal count, no_runs_before
        if index < no_runs_before:
            return None
        run = _run(data, index, members)
        if run is None:
            return None
        values, end, bound = run
        if values is None:
            no_runs_before = end
            return None
        count += bound
        if count > max_values:
            raise _too_many_values(max_values)
        return values, end

    while True:
        # At the start of a value (in an array, possibly a run of them).
        top = stack[-1] if stack else None
        run = take_run(index, members=False) if top is not None and not top[1] else None
        if run is not None:
            top[0].extend(run[0])
            index = run[1]
        else:
            count += 1
            if count > max_values:
                raise _too_many_values(max_values)
            char = data[index] if index < size else 0
            value = _NO_VALUE
            if char == 0x7B:
                index = skip(data, index + 1).end()
                if index < size and data[index] == 0x7D:
                    value, index = {}, index + 1
                else:
                    if len(stack) >= max_depth:
                        raise _too_deep(max_depth)
                    run = take_run(index, members=True)
                    if run is None:
                        key, index = read_key(index)
                        stack.append([[], True, key])
                        continue
                    stack.append([run[0], True, None])
                    index = run[1]
            elif char == 0x5B:
                opened = _OPEN_ARRAYS.match(data, index)
                extra = opened.group().count(b"[") - 1  # arrays that hold the next one
                if extra:
                    count += extra
                    if count > max_values:
                        raise _too_many_values(max_values)
                    if len(stack) + extra >= max_depth:
                        raise _too_deep(max_depth)
                    stack.extend([[], False, None] for _ in range(extra))
                    index = opened.end() - 1
                index = skip(data, index + 1).end()
                if index < size and data[index] == 0x5D:
                    value, index = [], index + 1
                else:
                    if len(stack) >= max_depth:
                        raise _too_deep(max_depth)
                    stack.append([[], False, None])
                    continue
            elif char == 0x22:
                value, index = _read_string(data, index)
            elif char == 0x6E:
                value, index = read_literal(index, b"null", None)
            elif char == 0x74:
                value, index = read_literal(index, b"true", True)
            elif char == 0x66:
                value, index = read_literal(index, b"false", False)
            else:
                value, index = _read_number(data, index)
            if value is not _NO_VALUE:
                if not stack:
                    return finish_root(value, index)
                top = stack[-1]
                top[0].append((top[2], value) if top[1] else value)
        # After a value: a separator, or the end of its container (and maybe of several).
        while True:
            items, is_object, _ = stack[-1]
            if index < size and data[index] in whitespace:
                index = skip(data, index).end()
            char = data[index] if index < size else 0
            if char == 0x2C:
                index = skip(data, index + 1).end()
                if not is_object:
                    break
                run = take_run(index, members=True)
                if run is None:
                    stack[-1][2], index = read_key(index)
                    break
                items.extend(run[0])
                index = run[1]
                continue
            if char == (0x7D if is_object else 0x5D):
                stack.pop()
                value, index = (_make_object(items) if is_object else items), index + 1
                if not stack:
                    return finish_root(value, index)
                top = stack[-1]
                top[0].append((top[2], value) if top[1] else value)
                continue
            raise _ParseError(_MISS_COMMA_CURLY if is_object else _MISS_COMMA_SQUARE, index)


# The fast path: Python's C scanner, used only where it provably builds what rapidjson would.
# Number literals of up to 16 characters without an exponent convert exactly the same way
# (at most 15 digits: rapidjson divides two exact doubles, as correctly rounded as float());
# longer ones and exponents go through the rapidjson port. Lone \uD800-\uDFFF escapes decode
# differently (rapidjson rejects or keeps them as bytes), so those documents take the port.
_RISKY_NUMBER = re.compile(rb"[0-9][eE]|[0-9.]{17}")
# The same test at C speed for whole bodies: digits and dots become D, e/E become E.
_NUMBER_CHARS = bytes(
    0x44 if chr(byte) in "0123456789." else 0x45 if chr(byte) in "eE" else 0x20
    for byte in range(256)
)


def _has_risky_number(body: bytes) -> bool:
    shape = body.translate(_NUMBER_CHARS)
    return b"DE" in shape or b"D" * 17 in shape


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_LONE_SURROGATE_ESCAPE = re.compile(
    rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])"
    rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F]"
)
_TEXT_WHITESPACE = re.compile(r"[ \t\n\r]*")
_STRING_TOKENS = re.compile(rb'"[^"\\]*(?:\\.?[^"\\]*)*(?:"|\Z)', re.DOTALL)


def _literal_value(literal: str) -> int | float:
    try:
        value, end = _read_number(literal.encode("ascii"), 0)
    except _ParseError:
        raise _NeedsExactParse from None
    if end != len(literal):
        raise _NeedsExactParse
    return value


def _fast_float(literal: str) -> float:
    if len(literal) <= 16 and "e" not in literal and "E" not in literal:
        return float(literal)
    return _literal_value(literal)


def _fast_int(literal: str) -> int | float:
    return int(literal) if len(literal) <= 18 else _literal_value(literal)


_PLAIN_DECODER = json.JSONDecoder(object_pairs_hook=_make_object)
_NUMBER_DECODER = json.JSONDecoder(
    object_pairs_hook=_make_object, parse_float=_fast_float, parse_int=_fast_int
)


def _parse_fast(body: bytes) -> tuple[bool, Any]:
    """(True, value) when the C scanner parsed `body` exactly as rapidjson would, (False, None)
    when only the exact parser can tell; raises _ParseError for data after the document."""
    if _SURROGATE_ESCAPE.search(body) and _LONE_SURROGATE_ESCAPE.search(body):
        return False, None
    text = body[_bom_length(body) :].decode("utf-8", "surrogateescape")
    decoder = _NUMBER_DECODER if _has_risky_number(body) else _PLAIN_DECODER
    try:
        value, end = decoder.raw_decode(text, _TEXT_WHITESPACE.match(text).end())
    except (ValueError, RecursionError, _NeedsExactParse):  # JSONDecodeError is a ValueError
        return False, None
    end = _TEXT_WHITESPACE.match(text, end).end()
    if end < len(text) and text[end] != "\x00":
        if not isinstance(value, dict | list | str):
            return False, None  # a number may go on for rapidjson ("NaN.5", "0.x")
        # The document closed exactly where rapidjson closes it, so its error is known.
        offset = _bom_length(body) + len(text[:end].encode("utf-8", "surrogateescape"))
        raise _ParseError(_NOT_SINGULAR, offset)
    return True, value


def _value_bound(data: bytes) -> int:
    """At least the number of JSON values in `data`: each is the root, the first element of a
    non-empty array or object, or follows a comma. Text inside strings only adds to it."""
    opened = data.count(b"[") + data.count(b"{") - data.count(b"[]") - data.count(b"{}")
    return 1 + data.count(b",") + opened


def _check_value_count(body: bytes, max_values: int) -> None:
    """Rejects a body holding more than `max_values` JSON values before parsing it.

    Brackets and commas inside strings are struck out only when the quick bound is over.
    """
    if _value_bound(body) <= max_values:
        return
    if _value_bound(_STRING_TOKENS.sub(b"", body)) > max_values:
        raise _too_many_values(max_values)


def parse_body(
    body: bytes, max_values: int = MAX_JSON_VALUES, max_depth: int = MAX_JSON_DEPTH
) -> Any:
    """The request body parsed as TF Serving 2.16.1 parses it, or its exact 400 (or a 429
    past `max_values` values or `max_depth` levels of nesting)."""
    if not body:
        raise _invalid("JSON Parse error: The document is empty")
    _check_value_count(body, max_values)
    try:
        parsed, value = _parse_fast(body)
        return value if parsed else _parse_exact(body, max_values, max_depth)
    except _ParseError as error:
        message = f"JSON Parse error: {error.message} at offset: {error.offset}"
    raise _invalid(message)


def request_object(
    body: bytes, max_values: int = MAX_JSON_VALUES, max_depth: int = MAX_JSON_DEPTH
) -> dict:
    """The parsed body, which must be a JSON object."""
    value = parse_body(body, max_values, max_depth)
    if not isinstance(value, dict):
        raise _invalid(f"JSON Value: {debug_string(value)} Is not object")
    return value
