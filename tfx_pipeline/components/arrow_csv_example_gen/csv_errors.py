"""Why a file cannot be read as CSV, in words: the file, the likely cause and where it starts.

Arrow's errors name neither the file nor a line, and Python's codecs name a byte position in a
buffer nobody sees. The cheap checks (`sniff`, `header_problem`) run on every file's first bytes;
`diagnose` rescans a file only after Arrow failed on it, so the happy path pays nothing for it.
No TFX: the Beam transform in `csv_examples` raises these errors.
"""

import csv
from collections.abc import Iterable, Iterator

import tensorflow as tf

# Bytes read from the start of every file to tell a binary, compressed or UTF-16 file from CSV.
SNIFF_BYTES = 64 << 10
# Bytes read at a time when a failed file is rescanned.
SCAN_BYTES = 1 << 20
# Delimiters other than the comma that a one-column header betrays.
OTHER_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}
# A value quoted in a message is cut to this many characters.
MAX_VALUE_CHARS = 60


class CsvFileError(ValueError):
    """A file that cannot be read as CSV; the message names the file and the likely cause."""

    def __init__(self, path: str, cause: str):
        super().__init__(f"cannot read CSV file {path}: {cause}")
        self.path = path
        self.cause = cause


def quoted(value: object) -> str:
    """A value for a one-line message: repr (so blanks and control bytes show), cut short."""
    text = repr(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 3] + "..."


def sniff(head: bytes) -> str | None:
    """What the first bytes of a file say it is when it is not UTF-8 CSV; None when they look fine."""
    if not head:
        return "the file is empty; a span CSV needs a header line and rows"
    if head.startswith(b"\x1f\x8b"):
        return "it is gzip-compressed; decompress it (gunzip) into the span folder"
    if head.startswith(b"PK\x03\x04"):
        return "it is a ZIP archive (an Excel .xlsx file?); export the sheet as CSV"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "it is UTF-16 text (byte order mark); re-encode it as UTF-8"
    nul = head.find(b"\x00")
    if nul >= 0:
        line = head.count(b"\n", 0, nul) + 1
        return (
            f"it holds NUL bytes (the first at byte {nul}, line {line}): a binary file, or text "
            "in UTF-16/UTF-32; the pipeline reads UTF-8 CSV"
        )
    return None


def not_utf8(offset: int, line: int, byte: int) -> str:
    return (
        f"it is not UTF-8: byte 0x{byte:02x} at byte {offset} (line {line}) is not valid UTF-8; "
        "re-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8 in.csv > out.csv)"
    )


def header_problem(names: list[str]) -> str | None:
    """A header that parsed as one column holding another delimiter: the file is not comma-separated."""
    if len(names) != 1:
        return None
    for delimiter, name in OTHER_DELIMITERS.items():
        if delimiter in names[0]:
            return (
                f"its header is one column, {quoted(names[0])}, that holds {name}s: the file "
                f"looks {name}-separated; the pipeline reads comma-separated CSV, so re-export "
                "it with commas"
            )
    return None


def _chunks(path: str) -> Iterator[bytes]:
    with tf.io.gfile.GFile(path, "rb") as handle:
        while chunk := handle.read(SCAN_BYTES):
            yield chunk


def first_invalid_utf8(chunks: Iterable[bytes]) -> tuple[int, int, int] | None:
    """(byte offset, 1-based line, the byte) of the first byte that is not UTF-8, or None."""
    offset, line, carry = 0, 1, b""
    for chunk in chunks:
        data = carry + chunk
        try:
            data.decode("utf-8")
            good, carry = data, b""
        except UnicodeDecodeError as error:
            if error.reason != "unexpected end of data":
                bad = error.start
                return offset + bad, line + data.count(b"\n", 0, bad), data[bad]
            # A character cut by the chunk boundary: finish it with the next chunk.
            good, carry = data[: error.start], data[error.start :]
        offset += len(good)
        line += good.count(b"\n")
    if carry:  # the file ends inside a character
        return offset, line, carry[0]
    return None


def _text_lines(path: str) -> Iterator[str]:
    """The file's lines as text (only called once the file is known to be UTF-8)."""
    with tf.io.gfile.GFile(path, "rb") as handle:
        for line in handle:
            yield line.decode("utf-8")


def records(lines: Iterable[str]) -> Iterator[tuple[int, list[str]]]:
    """(1-based line where it starts, fields) of every record, skipping empty lines as Arrow does."""
    reader = csv.reader(lines)
    previous_line = 0
    try:
        for fields in reader:
            start, previous_line = previous_line + 1, reader.line_num
            if fields:
                yield start, fields
    except csv.Error as error:
        raise csv.Error(f"line {reader.line_num}: {error}") from None


def line_of_record(path: str, record: int) -> int:
    """The 1-based line where record `record` (0 is the header) starts."""
    for index, (line, _) in enumerate(records(_text_lines(path))):
        if index == record:
            return line
    raise ValueError(f"{path} has no record {record}")


def ragged_row(lines: Iterable[str]) -> str | None:
    """The first row whose field count differs from the header's, described; None if none does."""
    header_fields = None
    try:
        for line, fields in records(lines):
            if header_fields is None:
                header_fields = len(fields)
            elif len(fields) != header_fields:
                shape = (
                    "a truncated or ragged row, or a value with a quote that never closes"
                    if len(fields) < header_fields
                    else "an unquoted comma inside a value, or a ragged row"
                )
                return (
                    f"line {line} has {len(fields)} fields where the header has {header_fields} "
                    f"({shape}): {quoted(','.join(fields))}"
                )
    except csv.Error as error:
        if "field larger than field limit" in str(error):
            return f"it is not valid CSV: {error} (a quote that opens a value and never closes?)"
        return f"it is not valid CSV: {error}"
    return None


def diagnose(path: str, error: Exception) -> str:
    """The likely cause of Arrow's failure to read `path`, found by rescanning the file."""
    with tf.io.gfile.GFile(path, "rb") as handle:
        cause = sniff(handle.read(SNIFF_BYTES))
    if cause:
        return cause
    invalid = first_invalid_utf8(_chunks(path))
    if invalid:
        return not_utf8(*invalid)
    return ragged_row(_text_lines(path)) or f"{error} (Arrow's message; no line found)"
