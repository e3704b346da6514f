"""Per-request schema check: each served row against its version's curated schema, counted per
feature and reason in the metrics; refused only in strict mode.

The schema is the text tensorflow_metadata Schema the Pusher puts into each version as
`assets.extra/schema.pbtxt` (SCHEMA_FILE; tests/test_contracts.py holds it equal to the
pipeline's name for it), or --request_schema_file for versions without one. A version with
neither is not checked. Only features of the SERVING environment are checked, so the label
source (`tips`, `not_in_environment: "SERVING"`) is never missing from a request. A row is
outside the schema for a feature when it has

- an unknown category: a string outside the feature's string domain (inline, or the top-level
  `string_domain` its `domain:` names);
- a value out of range: a number outside its int_domain or float_domain min/max;
- a missing required value: the feature must be present in every example (presence
  min_fraction 1.0, or value_count min >= 1) and the row has no value for it.

Rows come as raw-feature inputs (`serving_raw`: one input per feature, axis 0 the rows, where
NaN, "" and -1 mark a missing value, as in models/features.py and the request log) or as
serialized tf.Examples (predict's `examples` input, classify, regress: a feature absent or
without values is missing, and so are those markers). Inputs the schema does not name are not
looked at, nor required features a signature does not take: the signature decides its inputs,
and TF Serving refuses a request without one of them.

Cost: the checks are numpy calls over all of a request's rows at once (the numeric features of
one value per row together, as one matrix), never a loop over rows. Decoding tf.Examples is
per row in Python for a few rows, and one TensorFlow op from EXAMPLE_OP_MIN_ROWS rows on, where
the op's fixed cost is repaid. bench/request_schema_bench.py measures it (docs/serving.md).
"""

import dataclasses
import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
from google.protobuf import message, text_format
from tensorflow.core.example import example_pb2
from tensorflow_metadata.proto.v0 import schema_pb2

from serving.errors import ServingError
from serving.request_log import EXAMPLES_INPUT, MISSING_INT
from serving.versions import LoadedVersion

log = logging.getLogger(__name__)

# Directory contract with the pipeline's Pusher (tfx_pipeline/components/atomic_pusher/push.py),
# held together by tests/test_contracts.py: the schema each version's requests are checked against.
SCHEMA_FILE = "assets.extra/schema.pbtxt"
SERVING_ENVIRONMENT = "SERVING"
# Reasons, the `reason` label of the violation counter.
UNKNOWN_CATEGORY = "unknown_category"
OUT_OF_RANGE = "out_of_range"
MISSING_REQUIRED = "missing_required"
# TFDV does not validate features in these stages, so neither does the server.
INACTIVE_STAGES = frozenset(
    {
        schema_pb2.PLANNED,
        schema_pb2.ALPHA,
        schema_pb2.DEPRECATED,
        schema_pb2.DEBUG_ONLY,
        schema_pb2.DISABLED,
    }
)
# From this many tf.Examples on, one TensorFlow op decodes them. Measured on the 2-core machine,
# the op costs 0.3-0.7 ms for 1-100 rows (over 1 ms while the cores are busy), Python 25-45 us a
# row: they break even between 12 and 30 rows.
EXAMPLE_OP_MIN_ROWS = 24
# A refusal quotes at most this many violations, the first by row: with the rest of its text,
# under the 1024 characters at which gRPC answers are cut (serving/grpc_api.py).
MAX_QUOTED = 5
MAX_QUOTED_CHARS = 64  # of a string value
_EMPTY_STRINGS = frozenset({b"", ""})
# What fills a row without a value, by numpy dtype kind (one value per row, see _Column).
_MARKERS = {"f": np.nan, "i": MISSING_INT, "O": b""}
_TF_DTYPES = {schema_pb2.BYTES: "string", schema_pb2.INT: "int64", schema_pb2.FLOAT: "float32"}


class SchemaFileError(ValueError):
    """A schema file that cannot be read or used; the message names the file and the problem."""


@dataclasses.dataclass(frozen=True)
class FeatureRule:
    """What the schema asks of one feature in a served row.

    Attributes:
      name: the feature (a raw-feature input, or a tf.Example feature).
      dtype: the tf.Example value type the schema declares ("string", "int64", "float32"), or
        None when it declares none.
      required: every row must carry a value.
      domain: "string domain <name>" or "range [min, max]", for messages.
      categories: the allowed strings, as bytes and as str; None when any string goes.
      low, high: the allowed range of numbers; None on an open side.
    """

    name: str
    dtype: str | None
    required: bool
    domain: str = ""
    categories: frozenset | None = None
    low: float | None = None
    high: float | None = None


@dataclasses.dataclass(frozen=True)
class Violation:
    """One row outside the schema for one feature."""

    row: int
    feature: str
    reason: str
    value: str
    domain: str

    def text(self) -> str:
        if self.reason == UNKNOWN_CATEGORY:
            detail = f"unknown category {self.value}, not in the schema's {self.domain}"
        elif self.reason == OUT_OF_RANGE:
            detail = f"out of range: {self.value} is outside the schema's {self.domain}"
        else:
            detail = f"missing required value ({self.value}): the schema requires one in every row"
        return f"row {self.row}: feature {self.feature}: {detail}"


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """One request's rows against a schema.

    Attributes:
      rows: how many rows were checked.
      counts: (feature, reason) -> rows outside the schema; only nonzero counts.
      violations: the first few violations by row (at most MAX_QUOTED), for a refusal's text.
      more: how many violations `violations` leaves out.
    """

    rows: int
    counts: Mapping[tuple[str, str], int]
    violations: tuple[Violation, ...] = ()
    more: int = 0

    def refusal(self, model: str, version: int) -> ServingError:
        """The strict mode's answer: INVALID_ARGUMENT naming each quoted violation."""
        quoted = "; ".join(violation.text() for violation in self.violations)
        more = f"; and {self.more} more" if self.more else ""
        return ServingError.invalid_argument(
            f"Request rows are outside the schema of servable {model} version {version} "
            f"(--strict_request_schema): {quoted}{more}"
        )


@dataclasses.dataclass
class _Column:
    """One feature's values in a request: flat, with the row each value belongs to."""

    values: np.ndarray
    rows: int
    # Row of each value; None when there is exactly one value per row, in row order.
    row_of: np.ndarray | None = None

    def one_per_row(self) -> np.ndarray | None:
        """The values one per row, a missing marker for a row without any; None when a row
        has several, or the dtype has no marker."""
        if self.row_of is None:
            return self.values
        marker = _MARKERS.get(self.values.dtype.kind)
        counts = np.bincount(self.row_of, minlength=self.rows)
        if marker is None or counts.max(initial=0) > 1:
            return None
        values = np.full(self.rows, marker, dtype=self.values.dtype)
        values[self.row_of] = self.values
        return values

    def rows_with(self, mask: np.ndarray) -> np.ndarray:
        """Per row: whether any of its values is set in `mask`."""
        if self.row_of is None:
            return mask
        return np.bincount(self.row_of[mask], minlength=self.rows) > 0

    def value_in_row(self, row: int, mask: np.ndarray | None = None) -> Any:
        """The row's first value (the first set in `mask`), or None when it has none."""
        if self.row_of is None:
            return self.values[row] if mask is None or mask[row] else None
        hits = self.row_of == row if mask is None else (self.row_of == row) & mask
        found = np.flatnonzero(hits)
        return self.values[found[0]] if len(found) else None


def _dense_column(array: np.ndarray) -> _Column:
    array = np.asarray(array)
    if array.ndim == 1:
        return _Column(array, len(array))
    if array.ndim == 0:
        return _Column(array.reshape(1), 1)
    rows = array.shape[0]
    if array.size == rows:  # [rows, 1]: one value per row
        return _Column(array.reshape(rows), rows)
    width = array.size // rows if rows else 0
    return _Column(array.reshape(-1), rows, np.repeat(np.arange(rows), width))


def _missing_values(values: np.ndarray) -> np.ndarray | None:
    """Which values are the missing markers (NaN, "", -1); None for a dtype not checked."""
    kind = values.dtype.kind
    if kind == "f":
        return np.isnan(values)
    if kind in "iu":
        return values == MISSING_INT
    if kind == "b":
        return np.zeros(values.shape, dtype=bool)
    if kind == "O":
        return _contains(_EMPTY_STRINGS, values)
    if kind in "SU":
        return values == values.dtype.type()
    return None


def _contains(allowed: frozenset, values: np.ndarray) -> np.ndarray:
    """Elementwise `value in allowed` over an object array (a C loop calling the set's lookup)."""
    if values.size == 0:
        return np.zeros(values.shape, dtype=bool)
    return np.frompyfunc(allowed.__contains__, 1, 1)(values).astype(bool)


def _shown(value: Any) -> str:
    """A value as a refusal quotes it: strings in JSON quotes, numbers as numpy prints them."""
    if value is None:
        return "no value"
    if isinstance(value, bytes | str):
        text = value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value
        if len(text) > MAX_QUOTED_CHARS:
            return json.dumps(text[:MAX_QUOTED_CHARS]) + f"... ({len(text)} characters)"
        return json.dumps(text)
    return str(value)


def _bound(value: float | None, infinite: str) -> str:
    if value is None:
        return infinite
    # FloatDomain bounds are float32: 41.6, not 41.599998474121094.
    return str(int(value)) if float(value).is_integer() else str(np.float32(value))


class _Findings:
    """Counts and the first violations of one request, collected feature by feature."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.counts: dict[tuple[str, str], int] = {}
        self.violations: list[Violation] = []

    def add(
        self,
        rule: FeatureRule,
        reason: str,
        column: _Column,
        bad_rows: np.ndarray,
        bad_values: np.ndarray | None,
    ) -> None:
        count = int(np.count_nonzero(bad_rows))
        if not count:
            return
        self.counts[(rule.name, reason)] = count
        for row in np.flatnonzero(bad_rows)[:MAX_QUOTED]:
            value = column.value_in_row(int(row), bad_values)
            self.violations.append(
                Violation(int(row), rule.name, reason, _shown(value), rule.domain)
            )

    def result(self) -> CheckResult:
        ordered = sorted(self.violations, key=lambda v: (v.row, v.feature, v.reason))
        total = sum(self.counts.values())
        quoted = tuple(ordered[:MAX_QUOTED])
        return CheckResult(self.rows, self.counts, quoted, total - len(quoted))


def _check_column(
    rule: FeatureRule, column: _Column, findings: _Findings, as_sent: _Column | None = None
) -> None:
    """One feature's checks; `as_sent` is the column before a row without values got a marker
    (see _Column.one_per_row), so that a refusal says "no value" for it."""
    values = column.values
    missing = _missing_values(values)
    if missing is None:
        return
    if rule.required:
        present = column.rows_with(~missing)
        if not present.all():
            findings.add(rule, MISSING_REQUIRED, as_sent or column, ~present, None)
    kind = values.dtype.kind
    if rule.categories is not None and kind in "OSU":
        strings = values.astype(object) if kind != "O" else values
        outside = ~missing & ~_contains(rule.categories, strings)
        if outside.any():
            findings.add(rule, UNKNOWN_CATEGORY, column, column.rows_with(outside), outside)
    elif (rule.low is not None or rule.high is not None) and kind in "fiub":
        outside = np.zeros(values.shape, dtype=bool)
        if rule.low is not None:
            outside |= values < rule.low
        if rule.high is not None:
            outside |= values > rule.high
        outside &= ~missing
        if outside.any():
            findings.add(rule, OUT_OF_RANGE, column, column.rows_with(outside), outside)


# --- reading a schema ---------------------------------------------------------------------


def _in_serving(schema: schema_pb2.Schema, feature: schema_pb2.Feature) -> bool:
    """Whether `feature` is in the SERVING environment, as TFDV decides: its own in_environment
    or not_in_environment, else the schema's default_environment (none listed: every one)."""
    if SERVING_ENVIRONMENT in feature.in_environment:
        return True
    if SERVING_ENVIRONMENT in feature.not_in_environment:
        return False
    environments = list(feature.in_environment) or list(schema.default_environment)
    return not environments or SERVING_ENVIRONMENT in environments


def _range(domain: Any, name: str) -> dict:
    low = domain.min if domain.HasField("min") else None
    high = domain.max if domain.HasField("max") else None
    if low is None and high is None:
        return {}
    text = f"range [{_bound(low, '-inf')}, {_bound(high, 'inf')}]"
    if name:
        text += f" ({name})"
    return {"low": low, "high": high, "domain": text}


def _strings(domain: schema_pb2.StringDomain) -> dict:
    values = list(domain.value)
    allowed = frozenset(values) | frozenset(value.encode() for value in values)
    return {"categories": allowed, "domain": f"string domain {domain.name}".rstrip()}


def _domain(schema: schema_pb2.Schema, feature: schema_pb2.Feature) -> dict:
    """The feature's domain as FeatureRule fields; raises ValueError for a name not defined."""
    kind = feature.WhichOneof("domain_info")
    if kind == "string_domain":
        return _strings(feature.string_domain)
    if kind in ("int_domain", "float_domain"):
        return _range(getattr(feature, kind), "")
    if kind == "domain":
        for domain in schema.string_domain:
            if domain.name == feature.domain:
                return _strings(domain)
        for domain in (*schema.int_domain, *schema.float_domain):
            if domain.name == feature.domain:
                return _range(domain, domain.name)
        raise ValueError(
            f"feature {feature.name} names domain {feature.domain!r}, which the schema does not "
            "define (no top-level string_domain, int_domain or float_domain of that name)"
        )
    return {}


def feature_rules(schema: schema_pb2.Schema) -> tuple[FeatureRule, ...]:
    """The checks `schema` asks of served rows: one rule per SERVING feature with any check.

    Raises ValueError naming a feature whose `domain:` the schema does not define.
    """
    rules = []
    for feature in schema.feature:
        if feature.deprecated or feature.lifecycle_stage in INACTIVE_STAGES:
            continue
        if not _in_serving(schema, feature):
            continue
        required = feature.presence.min_fraction >= 1.0 or feature.value_count.min >= 1
        domain = _domain(schema, feature)
        if required or domain:
            rules.append(
                FeatureRule(feature.name, _TF_DTYPES.get(feature.type), required, **domain)
            )
    return tuple(rules)


class RequestSchema:
    """The checks one schema file asks of served rows.

    Args:
      rules: one per checked feature (`feature_rules`).
      source: where the schema came from, for the log.
    """

    def __init__(self, rules: Iterable[FeatureRule], source: str) -> None:
        self.rules = tuple(rules)
        self.source = source
        # Per rule, as columns for _check_numbers: the range (open sides infinite), required.
        self._low = np.array([[-np.inf if r.low is None else r.low] for r in self.rules])
        self._high = np.array([[np.inf if r.high is None else r.high] for r in self.rules])
        self._required = np.array([r.required for r in self.rules], dtype=bool)
        self._names = frozenset(rule.name for rule in self.rules)
        self._op_keys = np.array([rule.name.encode() for rule in self.rules], dtype=object)
        self._op_dtypes = [rule.dtype for rule in self.rules]

    @classmethod
    def from_text(cls, text: str, source: str) -> "RequestSchema":
        """Parses a text Schema; raises SchemaFileError naming `source` and the problem."""
        schema = schema_pb2.Schema()
        try:
            text_format.Parse(text, schema)
            rules = feature_rules(schema)
        except (text_format.ParseError, ValueError) as error:
            raise SchemaFileError(
                f"schema {source} is not a usable text tensorflow_metadata Schema: {error}"
            ) from None
        return cls(rules, source)

    @classmethod
    def read(cls, path: str) -> "RequestSchema":
        """Reads a text Schema file; raises SchemaFileError naming `path` and the problem."""
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else str(error)
            raise SchemaFileError(f"cannot read schema {path}: {reason or error}") from None
        return cls.from_text(text, path)

    def check_inputs(self, inputs: Mapping[str, np.ndarray]) -> CheckResult | None:
        """Checks a predict call's inputs: raw features, or tf.Examples under `examples`.

        Returns None when nothing in `inputs` is checked (no input the schema names), or when
        the rows cannot be told apart (inputs of different batch sizes, which the model
        refuses itself).
        """
        named = [rule for rule in self.rules if rule.name in inputs]
        if not named:
            examples = inputs.get(EXAMPLES_INPUT)
            if len(inputs) == 1 and examples is not None:
                examples = np.asarray(examples)
                if examples.dtype.kind in "OS":
                    return self.check_examples(examples.reshape(-1))
            return None
        columns = {rule.name: _dense_column(inputs[rule.name]) for rule in named}
        rows = {column.rows for column in columns.values()}
        if len(rows) != 1:
            return None
        return self._check(columns, rows.pop())

    def check_examples(self, serialized: np.ndarray) -> CheckResult | None:
        """Checks serialized tf.Examples; None when one does not parse (the model answers it)."""
        serialized = np.asarray(serialized, dtype=object).reshape(-1)
        if not self.rules or len(serialized) == 0:
            return None
        columns = None
        if len(serialized) >= EXAMPLE_OP_MIN_ROWS and None not in self._op_dtypes:
            columns = self._decode_with_op(serialized)
        if columns is None:
            columns = self._decode_in_python(serialized)
        if columns is None:
            return None
        return self._check(columns, len(serialized))

    def _check(self, columns: Mapping[str, _Column], rows: int) -> CheckResult:
        findings = _Findings(rows)
        numbers: dict[int, np.ndarray] = {}
        for index, rule in enumerate(self.rules):
            column = columns.get(rule.name)
            if column is None:
                continue
            values = column.one_per_row()
            if values is not None and values.dtype.kind in "fi":
                numbers[index] = values  # checked together below
            elif values is not None:
                _check_column(rule, _Column(values, rows), findings, column)
            else:
                _check_column(rule, column, findings)
        if numbers:
            self._check_numbers(numbers, columns, findings)
        return findings.result()

    def _check_numbers(
        self,
        numbers: Mapping[int, np.ndarray],
        as_sent: Mapping[str, _Column],
        findings: _Findings,
    ) -> None:
        """Every numeric feature with one value per row (rule index -> values) at once, as one
        features x rows matrix: a few numpy calls whatever the number of features. float64
        holds float32 values exactly, and int64 ones below 2^53 (beyond any bound here)."""
        indices = list(numbers)
        matrix = np.array(list(numbers.values()), dtype=np.float64)
        markers = [[np.nan if v.dtype.kind == "f" else MISSING_INT] for v in numbers.values()]
        missing = np.isnan(matrix) | (matrix == np.array(markers))
        outside = (matrix < self._low[indices]) | (matrix > self._high[indices])
        outside &= ~missing
        for row in np.flatnonzero(self._required[indices] & missing.any(axis=1)):
            rule = self.rules[indices[row]]
            findings.add(rule, MISSING_REQUIRED, as_sent[rule.name], missing[row], None)
        for row in np.flatnonzero(outside.any(axis=1)):
            index = indices[row]
            column = _Column(numbers[index], findings.rows)
            findings.add(self.rules[index], OUT_OF_RANGE, column, outside[row], outside[row])

    def _decode_in_python(self, serialized: np.ndarray) -> dict[str, _Column] | None:
        names = [rule.name for rule in self.rules]
        values: dict[str, list] = {name: [] for name in names}
        row_of: dict[str, list[int]] = {name: [] for name in names}
        strings: set[str] = set()
        for row, data in enumerate(serialized):
            try:
                features = example_pb2.Example.FromString(data).features.feature
            except (message.DecodeError, TypeError):
                return None
            for name in self._names.intersection(features):
                feature = features[name]
                kind = feature.WhichOneof("kind")
                if kind is None:
                    continue
                got = getattr(feature, kind).value
                if len(got) == 1:  # the common case, a third faster than extend()
                    values[name].append(got[0])
                    row_of[name].append(row)
                else:
                    values[name].extend(got)
                    row_of[name].extend([row] * len(got))
                if kind == "bytes_list":
                    strings.add(name)
        rows = len(serialized)
        one_each = list(range(rows))
        return {
            name: _Column(
                np.array(values[name], dtype=object) if name in strings else np.array(values[name]),
                rows,
                None if row_of[name] == one_each else np.array(row_of[name], dtype=np.int64),
            )
            for name in names
        }

    def _decode_with_op(self, serialized: np.ndarray) -> dict[str, _Column] | None:
        """All rows in one ParseExampleV2 call; None when the op refuses them (a value list of
        another type than the schema declares, a record that is not a tf.Example)."""
        import tensorflow as tf

        try:
            # ParseExampleV2 takes TensorFlow's fast path only when all its inputs are tensors:
            # one IdentityN op makes them (as in serving/servable.py), a quarter faster than
            # the slow path's conversions.
            examples, empty, keys = tf.raw_ops.IdentityN(
                input=[serialized, np.array([], dtype=object), self._op_keys]
            )
            parsed = tf.raw_ops.ParseExampleV2(
                serialized=examples,
                names=empty,
                sparse_keys=empty,
                dense_keys=empty,
                ragged_keys=keys,
                dense_defaults=[],
                num_sparse=0,
                sparse_types=[],
                ragged_value_types=[tf.as_dtype(dtype) for dtype in self._op_dtypes],
                ragged_split_types=[tf.int64] * len(self.rules),
                dense_shapes=[],
            )
        except (tf.errors.OpError, TypeError, ValueError):
            return None
        rows = len(serialized)
        columns = {}
        for rule, values, splits in zip(
            self.rules, parsed.ragged_values, parsed.ragged_row_splits, strict=True
        ):
            values, counts = values.numpy(), np.diff(splits.numpy())
            row_of = None
            if len(values) != rows or not (counts == 1).all():
                row_of = np.repeat(np.arange(rows, dtype=np.int64), counts)
            columns[rule.name] = _Column(values, rows, row_of)
        return columns


@dataclasses.dataclass(frozen=True)
class RequestSchemaSettings:
    """--request_schema_file (read) and --strict_request_schema.

    Attributes:
      fallback: the schema for versions that carry none of their own, or None.
      strict: refuse a request with any row outside the schema (INVALID_ARGUMENT, HTTP 400);
        otherwise such rows are only counted.
    """

    fallback: RequestSchema | None = None
    strict: bool = False


# Told (model, version, result) for every checked request.
CountHook = Callable[[str, int, CheckResult], None]


class RequestSchemaCheck:
    """Finds each version's schema as it loads, and checks the rows of the requests it answers.

    The schema found is kept on the LoadedVersion (`request_schema`); a version without one is
    not checked. A check never changes an answer unless `settings.strict` refuses it, and a
    failure of the check itself is logged and lets the request through.
    """

    def __init__(self, settings: RequestSchemaSettings, count: CountHook | None = None) -> None:
        self.settings = settings
        self._count = count
        self._lock = threading.Lock()
        self._failed: set[tuple[str, int]] = set()

    def schema_for(self, model: str, version: int, path: str) -> RequestSchema | None:
        """The schema a version's requests are checked against, as logged: its own
        SCHEMA_FILE, else --request_schema_file, else none. An own file that does not parse is
        an error named in the log; the version still serves (checked against the fallback)."""
        own = os.path.join(path, SCHEMA_FILE)
        fallback = self.settings.fallback
        instead = (
            f"checked against --request_schema_file {fallback.source} instead"
            if fallback is not None
            else "not checked"
        )
        if os.path.exists(own):
            try:
                schema = RequestSchema.read(own)
            except SchemaFileError as error:
                log.error(
                    "Servable %s version %d: %s; its requests are %s",
                    model,
                    version,
                    error,
                    instead,
                )
                return fallback
            self._log_checked(model, version, schema)
            return schema
        if fallback is not None:
            self._log_checked(model, version, fallback)
            return fallback
        log.info(
            "Servable %s version %d has no %s and no --request_schema_file is set: its requests "
            "are not checked against a schema",
            model,
            version,
            SCHEMA_FILE,
        )
        return None

    def _log_checked(self, model: str, version: int, schema: RequestSchema) -> None:
        log.info(
            "Servable %s version %d: request rows are checked against %s (%d features%s)",
            model,
            version,
            schema.source,
            len(schema.rules),
            ", strict: rows outside it are refused" if self.settings.strict else "",
        )

    def check_inputs(self, loaded: LoadedVersion, inputs: Mapping[str, np.ndarray]) -> None:
        """Checks a predict call's inputs on `loaded`; raises ServingError (INVALID_ARGUMENT)
        only in strict mode, for a row outside the schema."""
        self._apply(loaded, lambda schema: schema.check_inputs(inputs))

    def check_examples(self, loaded: LoadedVersion, serialized: np.ndarray) -> None:
        """Checks the tf.Examples of a classify, regress or multi-inference call; as above."""
        self._apply(loaded, lambda schema: schema.check_examples(serialized))

    def _apply(
        self, loaded: LoadedVersion, check: Callable[[RequestSchema], CheckResult | None]
    ) -> None:
        schema = loaded.request_schema
        if schema is None:
            return
        try:
            result = check(schema)
        except Exception:  # noqa: BLE001 - a failing check must not fail the request
            self._report_failure(loaded.model_name, loaded.version)
            return
        if result is None:
            return
        if self._count is not None:
            self._count(loaded.model_name, loaded.version, result)
        if self.settings.strict and result.counts:
            raise result.refusal(loaded.model_name, loaded.version)

    def _report_failure(self, model: str, version: int) -> None:
        """Logs a failure of the check with its traceback, once per version."""
        with self._lock:
            if (model, version) in self._failed:
                return
            self._failed.add((model, version))
        log.exception(
            "Servable %s version %d: the request schema check failed; the request is answered "
            "unchecked (logged once per version)",
            model,
            version,
        )
