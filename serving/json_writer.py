"""JSON output byte-compatible with TF Serving's two writers.

TF Serving writes predict/classify/regress responses and errors with rapidjson's PrettyWriter
(4-space indent, optional single-line arrays, no trailing newline) and model status/metadata with
protobuf's JSON printer (1-space indent, int64 as quoted strings, trailing newline). Clients may
depend on either layout, so both are reproduced here rather than using `json.dumps`.
"""

import math
from typing import Any

import numpy as np

# rapidjson's short escapes; other control bytes become uppercase \u00XX.
_SHORT_ESCAPES = {
    0x22: '\\"',
    0x5C: "\\\\",
    0x08: "\\b",
    0x0C: "\\f",
    0x0A: "\\n",
    0x0D: "\\r",
    0x09: "\\t",
}


def _rapidjson_escape(data: bytes) -> str:
    """rapidjson's string escaping: short escapes, other control bytes as uppercase \\u00XX."""
    out = []
    for byte in data:
        escape = _SHORT_ESCAPES.get(byte)
        if escape is not None:
            out.append(escape)
        elif byte < 0x20:
            out.append(f"\\u{byte:04X}")
        else:
            out.append(chr(byte))  # bytes pass through unchanged (latin-1 round trip below)
    return "".join(out)


class PrettyWriter:
    """An event-based writer laid out exactly like rapidjson 1.1.0's PrettyWriter."""

    def __init__(self, single_line_arrays: bool = False) -> None:
        self._parts: list[str] = []
        self._stack: list[list] = []  # [is_array, values_written]
        self.single_line_arrays = single_line_arrays

    def _indent(self) -> None:
        self._parts.append(" " * (4 * len(self._stack)))

    def _before_value(self) -> None:
        if not self._stack:
            return
        level = self._stack[-1]
        if level[0]:
            if level[1] > 0:
                self._parts.append(", " if self.single_line_arrays else ",")
            if not self.single_line_arrays:
                self._parts.append("\n")
                self._indent()
        else:
            if level[1] > 0:
                self._parts.append(",\n" if level[1] % 2 == 0 else ": ")
            else:
                self._parts.append("\n")
            if level[1] % 2 == 0:
                self._indent()
        level[1] += 1

    def raw(self, text: str) -> None:
        self._before_value()
        self._parts.append(text)

    def string(self, value: bytes | str) -> None:
        data = value.encode("utf-8") if isinstance(value, str) else value
        self._before_value()
        self._parts.append('"' + _rapidjson_escape(data) + '"')

    key = string

    def start_object(self) -> None:
        self._before_value()
        self._stack.append([False, 0])
        self._parts.append("{")

    def end_object(self) -> None:
        level = self._stack.pop()
        if level[1]:
            self._parts.append("\n")
            self._indent()
        self._parts.append("}")

    def start_array(self) -> None:
        self._before_value()
        self._stack.append([True, 0])
        self._parts.append("[")

    def end_array(self) -> None:
        level = self._stack.pop()
        if level[1] and not self.single_line_arrays:
            self._parts.append("\n")
            self._indent()
        self._parts.append("]")

    def size(self) -> int:
        return sum(len(part) for part in self._parts)

    def getvalue(self) -> bytes:
        return "".join(self._parts).encode("latin-1")


def format_decimal(value: float, is_float32: bool) -> str:
    """TF Serving's WriteDecimal: %.6g unless it does not round-trip, then max_digits10."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "-Infinity" if value < 0 else "Infinity"
    text = f"{value:.6g}"
    back = float(np.float32(float(text))) if is_float32 else float(text)
    if back != value:
        text = f"{value:.9g}" if is_float32 else f"{value:.17g}"
    if "." not in text and "e" not in text:
        text += ".0"
    return text


def _grisu_like(value: float) -> str:
    """rapidjson's Writer::Double for echoing request numbers: shortest repr, exponent as `e21`."""
    text = repr(float(value))
    if "e" in text:
        mantissa, exponent = text.split("e")
        sign = "-" if exponent.startswith("-") else ""
        text = f"{mantissa}e{sign}{exponent.lstrip('+-').lstrip('0') or '0'}"
    return text


class _Truncated(Exception):
    pass


def debug_string(value: Any, limit: int = 256) -> str:
    """TF Serving's JsonValueToDebugString: single-line arrays, cut off after about `limit` bytes."""
    writer = PrettyWriter(single_line_arrays=True)

    def check() -> None:
        if writer.size() >= limit:
            raise _Truncated

    def walk(node: Any) -> None:
        check()
        if isinstance(node, dict):
            writer.start_object()
            for key, item in node.items():
                check()
                writer.key(key)
                walk(item)
            check()
            writer.end_object()
        elif isinstance(node, list):
            writer.start_array()
            for item in node:
                walk(item)
            check()
            writer.end_array()
        elif node is None:
            writer.raw("null")
        elif node is True:
            writer.raw("true")
        elif node is False:
            writer.raw("false")
        elif isinstance(node, int):
            writer.raw(str(node))
        elif isinstance(node, float):
            if not math.isfinite(node):
                raise _Truncated  # rapidjson refuses NaN/Inf here and stops writing
            writer.raw(_grisu_like(node))
        else:
            writer.string(str(node))

    try:
        walk(value)
    except _Truncated:
        pass
    return writer.getvalue().decode("latin-1")


def error_body(message: str) -> bytes:
    """`{\\n    "error": "..."\\n}` exactly as TF Serving's MakeJsonFromStatus writes it."""
    writer = PrettyWriter()
    writer.start_object()
    writer.key("error")
    writer.string(message)
    writer.end_object()
    return writer.getvalue()


# --- protobuf-style JSON (model status and metadata) ---------------------------------------

_PROTO_SHORT_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}
_PROTO_ESCAPED_RANGES = (
    (0x00, 0x07), (0x0B, 0x0B), (0x0E, 0x1F), (0x3C, 0x3C), (0x3E, 0x3E), (0x7F, 0x9F),
    (0xAD, 0xAD), (0x600, 0x603), (0x6DD, 0x6DD), (0x70F, 0x70F), (0x17B4, 0x17B5),
    (0x200B, 0x200F), (0x2028, 0x202E), (0x2060, 0x2064), (0x206A, 0x206F), (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB), (0x1D173, 0x1D17A),
)  # fmt: skip


def _proto_escape(text: str) -> str:
    out = []
    for char in text:
        code = ord(char)
        if char in _PROTO_SHORT_ESCAPES:
            out.append(_PROTO_SHORT_ESCAPES[char])
        elif any(low <= code <= high for low, high in _PROTO_ESCAPED_RANGES):
            if code > 0xFFFF:
                code -= 0x10000
                out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
            else:
                out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def proto_json(value: Any, indent: int = 0, root: bool = True) -> str:
    """protobuf's JSON printer layout: 1-space indent; Python int means int64 (quoted)."""
    pad = " " * (indent + 1)
    if isinstance(value, dict):
        if not value:
            text = "{}"
        else:
            items = ",\n".join(
                f'{pad}"{_proto_escape(k)}": {proto_json(v, indent + 1, False)}'
                for k, v in value.items()
            )
            text = "{\n" + items + "\n" + " " * indent + "}"
    elif isinstance(value, list):
        if not value:
            text = "[]"
        else:
            items = ",\n".join(pad + proto_json(v, indent + 1, False) for v in value)
            text = "[\n" + items + "\n" + " " * indent + "]"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int):
        text = f'"{value}"'
    elif isinstance(value, str):
        text = f'"{_proto_escape(value)}"'
    else:
        raise TypeError(f"cannot print {type(value).__name__} as protobuf JSON")
    return text + ("\n" if root else "")
