"""JSON output byte-compatible with TF Serving 2.16.1's two writers.

TF Serving writes predict/classify/regress responses and errors with rapidjson 1.1.0's
PrettyWriter (4-space indent, optional single-line arrays, no trailing newline) and model
status/metadata with protobuf's JSON printer (1-space indent, int64 as quoted strings, trailing
newline). Clients may depend on either layout, so both are reproduced here rather than using
`json.dumps`. Request values quoted back in error messages go through rapidjson's own number
printer (Grisu2, `dtoa`), ported below.
"""

import math
import struct
from typing import Any

import numpy as np

# Error messages quote request JSON back. TF Serving 2.16.1 quotes all of it; a bound keeps a
# hostile document (deep nesting pretty-prints in quadratic size) from costing unbounded work.
# Below the bound the text is byte-identical; past it the text stops at a value boundary, the
# way 2.18's JsonWriterWithLimit cuts at 256 bytes.
MAX_DEBUG_STRING_BYTES = 1024 * 1024

# rapidjson's short escapes; other control bytes become uppercase \u00XX (writer.h WriteString).
_SHORT_ESCAPES = {
    0x22: '\\"',
    0x5C: "\\\\",
    0x08: "\\b",
    0x0C: "\\f",
    0x0A: "\\n",
    0x0D: "\\r",
    0x09: "\\t",
}
_ESCAPE_TABLE = {byte: f"\\u{byte:04X}" for byte in range(0x20)} | _SHORT_ESCAPES


class JsonObject(dict):
    """A JSON object with repeated keys, as rapidjson keeps it.

    The dict holds each key's first value (rapidjson's FindMember); `members` keeps every pair
    in document order (what MemberCount, member iteration and the writer see). Objects without
    repeated keys are plain dicts.
    """

    def __init__(self, members: list[tuple[str, Any]]) -> None:
        super().__init__()
        for key, value in members:
            self.setdefault(key, value)
        self.members = members


def members(value: dict) -> list[tuple[str, Any]] | Any:
    """Every (key, value) pair of a parsed JSON object, repeated keys included."""
    return value.members if type(value) is JsonObject else value.items()


def member_count(value: dict) -> int:
    """rapidjson's MemberCount(): repeated keys count."""
    return len(value.members) if type(value) is JsonObject else len(value)


def to_bytes(text: str | bytes) -> bytes:
    """The bytes of a request string (invalid UTF-8 was kept as surrogate escapes)."""
    if isinstance(text, bytes):
        return text
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def _rapidjson_escape(data: bytes) -> str:
    """rapidjson's string escaping, one str char per output byte (latin-1 round trip)."""
    text = data.decode("latin-1")
    if not any(char < " " or char in '"\\' for char in text):
        return text
    return "".join(_ESCAPE_TABLE.get(ord(char), char) for char in text)


class PrettyWriter:
    """An event-based writer laid out exactly like rapidjson 1.1.0's PrettyWriter."""

    def __init__(self, single_line_arrays: bool = False) -> None:
        self._parts: list[str] = []
        self._size = 0
        self._stack: list[list] = []  # [is_array, values_written]
        self.single_line_arrays = single_line_arrays

    def _put(self, text: str) -> None:
        self._parts.append(text)
        self._size += len(text)

    def _indent(self) -> None:
        self._put(" " * (4 * len(self._stack)))

    def _before_value(self) -> None:
        """PrettyWriter::PrettyPrefix."""
        if not self._stack:
            return
        level = self._stack[-1]
        if level[0]:
            if level[1] > 0:
                self._put(", " if self.single_line_arrays else ",")
            if not self.single_line_arrays:
                self._put("\n")
                self._indent()
        else:
            if level[1] > 0:
                self._put(",\n" if level[1] % 2 == 0 else ": ")
            else:
                self._put("\n")
            if level[1] % 2 == 0:
                self._indent()
        level[1] += 1

    def raw(self, text: str) -> None:
        self._before_value()
        self._put(text)

    def string(self, value: bytes | str) -> None:
        self._before_value()
        self._put('"' + _rapidjson_escape(to_bytes(value)) + '"')

    key = string

    def start_object(self) -> None:
        self._before_value()
        self._stack.append([False, 0])
        self._put("{")

    def end_object(self) -> None:
        level = self._stack.pop()
        if level[1]:
            self._put("\n")
            self._indent()
        self._put("}")

    def start_array(self) -> None:
        self._before_value()
        self._stack.append([True, 0])
        self._put("[")

    def end_array(self) -> None:
        level = self._stack.pop()
        if level[1] and not self.single_line_arrays:
            self._put("\n")
            self._indent()
        self._put("]")

    def size(self) -> int:
        return self._size

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


# --- rapidjson 1.1.0 internal/dtoa.h and diyfp.h: Writer::Double for finite values ----------

_MASK64 = (1 << 64) - 1
_DP_SIGNIFICAND_MASK = (1 << 52) - 1
_DP_HIDDEN_BIT = 1 << 52
_DP_EXPONENT_BIAS = 0x3FF + 52
_POW10_32 = (1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000)


def _cached_power(index: int) -> tuple[int, int]:
    """kCachedPowers_F/E[index]: 10^(8*index - 348) as a normalized 64-bit significand,
    rounded to nearest (the table in diyfp.h GetCachedPowerByIndex)."""
    k = 8 * index - 348
    numerator, denominator = (10**k, 1) if k >= 0 else (1, 10**-k)
    exponent = numerator.bit_length() - denominator.bit_length() - 64
    while True:
        scaled_num = numerator << -exponent if exponent < 0 else numerator
        scaled_den = denominator << exponent if exponent > 0 else denominator
        significand, remainder = divmod(scaled_num, scaled_den)
        if significand >= 1 << 64:
            exponent += 1
        elif significand < 1 << 63:
            exponent -= 1
        else:
            break
    if 2 * remainder >= scaled_den:
        significand += 1
        if significand == 1 << 64:
            significand, exponent = 1 << 63, exponent + 1
    return significand, exponent


_CACHED_POWERS = [_cached_power(index) for index in range(87)]


def _multiply(f1: int, e1: int, f2: int, e2: int) -> tuple[int, int]:
    """DiyFp::operator*: the high 64 bits of the product, rounded."""
    product = f1 * f2
    high = product >> 64
    if product & (1 << 63):
        high += 1
    return high, e1 + e2 + 64


def _normalize_boundary(f: int, e: int) -> tuple[int, int]:
    while not f & (_DP_HIDDEN_BIT << 1):
        f <<= 1
        e -= 1
    return f << 10, e - 10


def _grisu_round(digits: list[int], delta: int, rest: int, ten_kappa: int, wp_w: int) -> None:
    while (
        rest < wp_w
        and ((delta - rest) & _MASK64) >= ten_kappa
        and (rest + ten_kappa < wp_w or wp_w - rest > ((rest + ten_kappa - wp_w) & _MASK64))
    ):
        digits[-1] -= 1
        rest += ten_kappa


def _count_decimal_digits32(n: int) -> int:
    for count, bound in enumerate(_POW10_32[1:9], start=1):
        if n < bound:
            return count
    return 9


def _grisu2(value: float) -> tuple[list[int], int]:
    """Grisu2: the digits and decimal exponent K with value ~= digits * 10^K."""
    bits = struct.unpack("<Q", struct.pack("<d", value))[0]
    biased_e = (bits >> 52) & 0x7FF
    f = bits & _DP_SIGNIFICAND_MASK
    if biased_e:
        f, e = f + _DP_HIDDEN_BIT, biased_e - _DP_EXPONENT_BIAS
    else:
        e = -_DP_EXPONENT_BIAS + 1
    plus_f, plus_e = _normalize_boundary((f << 1) + 1, e - 1)
    minus_f, minus_e = ((f << 2) - 1, e - 2) if f == _DP_HIDDEN_BIT else ((f << 1) - 1, e - 1)
    minus_f <<= minus_e - plus_e
    dk = (-61 - plus_e) * 0.30102999566398114 + 347
    k = int(dk)
    if dk - k > 0.0:
        k += 1
    index = (k >> 3) + 1
    K = -(-348 + (index << 3))
    c_f, c_e = _CACHED_POWERS[index]
    shift = 64 - f.bit_length()
    w_f, w_e = _multiply(f << shift, e - shift, c_f, c_e)
    wp_f, wp_e = _multiply(plus_f, plus_e, c_f, c_e)
    wm_f, _ = _multiply(minus_f, plus_e, c_f, c_e)
    wm_f += 1
    wp_f -= 1
    del w_e
    return _digit_gen(w_f, wp_f, wp_e, wp_f - wm_f, K)


def _digit_gen(w_f: int, mp_f: int, mp_e: int, delta: int, K: int) -> tuple[list[int], int]:
    one_shift = -mp_e
    one_f = 1 << one_shift
    wp_w = (mp_f - w_f) & _MASK64
    p1 = (mp_f >> one_shift) & 0xFFFFFFFF
    p2 = mp_f & (one_f - 1)
    kappa = _count_decimal_digits32(p1)
    digits: list[int] = []
    while kappa > 0:
        digit, p1 = divmod(p1, _POW10_32[kappa - 1])
        if digit or digits:
            digits.append(digit)
        kappa -= 1
        tmp = (p1 << one_shift) + p2
        if tmp <= delta:
            _grisu_round(digits, delta, tmp, _POW10_32[kappa] << one_shift, wp_w)
            return digits, K + kappa
    while True:
        p2 = (p2 * 10) & _MASK64
        delta = (delta * 10) & _MASK64
        digit = p2 >> one_shift
        if digit or digits:
            digits.append(digit)
        p2 &= one_f - 1
        kappa -= 1
        if p2 < delta:
            index = -kappa
            scale = _POW10_32[index] if index < 9 else 0
            _grisu_round(digits, delta, p2, one_f, (wp_w * scale) & _MASK64)
            return digits, K + kappa


def _write_exponent(k: int) -> str:
    return f"-{-k}" if k < 0 else str(k)


def _prettify(digits: str, k: int) -> str:
    """dtoa.h Prettify with maxDecimalPlaces = 324 (the Writer default)."""
    length = len(digits)
    kk = length + k  # 10^(kk-1) <= v < 10^kk
    if 0 <= k and kk <= 21:
        return digits + "0" * k + ".0"  # 1234e7 -> 12340000000.0
    if 0 < kk <= 21:
        return digits[:kk] + "." + digits[kk:]  # 1234e-2 -> 12.34
    if -6 < kk <= 0:
        return "0." + "0" * -kk + digits  # 1234e-6 -> 0.001234
    if kk < -324:
        return "0.0"
    if length == 1:
        return digits + "e" + _write_exponent(kk - 1)  # 1e30
    return digits[0] + "." + digits[1:] + "e" + _write_exponent(kk - 1)  # 1.234e33


def rapidjson_double(value: float) -> str:
    """rapidjson 1.1.0's Writer::Double text for a finite double (internal::dtoa)."""
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign = "-" if value < 0 else ""
    digits, k = _grisu2(abs(value))
    return sign + _prettify("".join(map(str, digits)), k)


# --- JsonValueToString (util/json_tensor.cc:169-183 in 2.16.1) ------------------------------

_FLOAT_RANGE = 3.4028234e38  # document.h IsFloat(): the bound rapidjson writes as a literal


class _StopWriting(Exception):
    pass


def debug_string(value: Any, limit: int = MAX_DEBUG_STRING_BYTES) -> str:
    """TF Serving 2.16.1's JsonValueToString of a parsed request value.

    A top-level double is written with WriteDecimal (as float when it fits one, which is how
    `1.2345678` comes back as `1.23456776`); anything else through rapidjson's PrettyWriter in
    its default layout: multi-line arrays, full length. Like rapidjson, a NaN or infinity inside
    an array or object stops the writer after the separator that precedes it. Iterative, so
    any nesting depth is fine.
    """
    if type(value) is float:
        if -_FLOAT_RANGE <= value <= _FLOAT_RANGE:
            return format_decimal(float(np.float32(value)), is_float32=True)
        return format_decimal(value, is_float32=False)
    writer = PrettyWriter()

    def check() -> None:
        if writer.size() >= limit:
            raise _StopWriting

    def scalar(node: Any) -> None:
        check()
        if node is None:
            writer.raw("null")
        elif node is True:
            writer.raw("true")
        elif node is False:
            writer.raw("false")
        elif type(node) is int:
            writer.raw(str(node))
        elif type(node) is float:
            if not math.isfinite(node):
                writer.raw("")  # PrettyPrefix runs, then WriteDouble refuses NaN/Inf
                raise _StopWriting
            writer.raw(rapidjson_double(node))
        else:
            writer.string(node)

    # Each stack entry: (iterator over children, is_object).
    stack: list[tuple[Any, bool]] = []

    def open_node(node: Any) -> None:
        check()
        if isinstance(node, dict):
            writer.start_object()
            stack.append((iter(members(node)), True))
        elif isinstance(node, list):
            writer.start_array()
            stack.append((iter(node), False))
        else:
            scalar(node)

    try:
        open_node(value)
        while stack:
            children, is_object = stack[-1]
            child = next(children, _StopWriting)
            if child is _StopWriting:
                stack.pop()
                check()
                writer.end_object() if is_object else writer.end_array()
                continue
            if is_object:
                check()
                writer.key(child[0])
                child = child[1]
            open_node(child)
    except _StopWriting:
        pass
    return writer.getvalue().decode("utf-8", "surrogateescape")


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
