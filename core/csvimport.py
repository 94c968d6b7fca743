"""What every streaming CSV import shares: reading the file, mapping its columns, reporting
rejected rows, and the summary. The customer import and modules' imports (orders, products)
build on it, so they report problems the same way: the line, the field, and what to do.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from core.errors import CrmError

#: The mapping target that ignores a column (``--map Notes=-``).
IGNORE = "-"


class ImportFailed(CrmError):
    """The file cannot be imported at all (encoding, header); nothing was written."""


class RowError(ValueError):
    """A row that cannot be imported, with the field at fault."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


@dataclass
class Summary:
    """What an import did (or, in a dry run, would do); ``rejected`` counts rows."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    seconds: float = 0.0
    dry_run: bool = False
    written: bool = True
    rejected_file: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON output (the first 100 errors)."""
        data = dict(self.__dict__)
        data["errors"] = self.errors[:100]
        return data

    def clear_counts(self) -> None:
        """Nothing was written after all: every count but ``rejected`` back to zero."""
        for name, value in self.__dict__.items():
            if isinstance(value, int) and not isinstance(value, bool) and name != "rejected":
                setattr(self, name, 0)


def open_csv(path: Path) -> io.TextIOWrapper:
    """Open ``path`` for import: UTF-8 with or without BOM, decoding errors raised."""
    return open(path, encoding="utf-8-sig", errors="strict", newline="")


def parse_mapping(pairs: list[str], columns: tuple[str, ...]) -> dict[str, str]:
    """``["Họ tên=display_name", "Notes=-"]`` as a dict; ``-`` ignores a column."""
    mapping = {}
    for pair in pairs:
        column, sep, target = pair.partition("=")
        if not sep or not column or not target:
            raise ImportFailed(f"--map {pair!r}: write COLUMN=field (or COLUMN=- to ignore it)")
        if target != IGNORE and target not in columns:
            raise ImportFailed(
                f"--map {pair!r}: unknown field {target!r}; fields are {', '.join(columns)}"
            )
        mapping[column] = target
    return mapping


def header(
    raw: list[str],
    mapping: dict[str, str],
    columns: tuple[str, ...],
    required: tuple[tuple[str, ...], ...] = (),
    read_past: tuple[str, ...] = (),
) -> list[str | None]:
    """The field of each column (``None``: ignored); unknown, doubled and missing columns raise.

    ``required`` lists groups of which at least one column must be present; ``read_past`` names
    columns that are silently skipped (those our own exports write but the database sets).
    """
    fields: list[str | None] = []
    unknown = []
    for name in raw:
        key = name.strip()
        target = mapping.get(key, mapping.get(name, key.lower()))
        if target == IGNORE or target in read_past:
            fields.append(None)
        elif target in columns:
            fields.append(target)
        else:
            unknown.append(name)
    if unknown:
        raise ImportFailed(
            f"unknown column(s) {', '.join(repr(u) for u in unknown)}; map them with "
            f"--map COLUMN=field or ignore them with --map COLUMN=-; fields are "
            f"{', '.join(columns)}"
        )
    present = [h for h in fields if h]
    duplicated = sorted({h for h in present if present.count(h) > 1})
    if duplicated:
        raise ImportFailed(f"column(s) given twice: {', '.join(duplicated)}")
    missing = [" or ".join(group) for group in required if not set(group) & set(present)]
    if missing:
        raise ImportFailed(f"missing column(s): {', '.join(missing)}")
    return fields


def rows(handle: IO[str]) -> Iterator[tuple[int, list[str]]]:
    """``(line number, cells)`` of each CSV record; encoding and CSV errors raise."""
    reader = csv.reader(handle)
    line = 1
    try:
        for raw in reader:
            yield line, raw
            line = reader.line_num + 1
    except UnicodeDecodeError as exc:
        where = _first_bad_byte(handle) or (line, exc.object[exc.start])
        raise ImportFailed(
            f"the file is not UTF-8 (byte 0x{where[1]:02x} on line {where[0]}); save it as "
            "UTF-8 and import again"
        ) from None
    except csv.Error as exc:
        raise ImportFailed(f"line {reader.line_num}: malformed CSV: {exc}") from None


def _first_bad_byte(handle: IO[str]) -> tuple[int, int] | None:
    """The line and value of the file's first byte that is not UTF-8 (the decoder reads ahead,
    so its error does not say which line); ``None`` for a stream that is not a file."""
    name = getattr(handle, "name", None)
    if not isinstance(name, str | bytes) or not Path(name).is_file():
        return None
    with open(name, "rb") as raw:
        for number, data in enumerate(raw, 1):
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as exc:
                return number, data[exc.start]
    return None


class RejectedWriter:
    """Writes rejected rows with their line and reason, only if there are any."""

    def __init__(self, path: Path | None, columns: list[str]) -> None:
        self.path, self.columns = path, columns
        self.handle: IO[str] | None = None
        self.writer: Any = None

    def write(self, line: int, reason: str, raw: list[str]) -> None:
        """Add one rejected row."""
        if self.path is None:
            return
        if self.handle is None:
            self.handle = open(self.path, "w", encoding="utf-8", newline="")  # noqa: SIM115
            self.writer = csv.writer(self.handle)
            self.writer.writerow(["line", "reason", *self.columns])
        self.writer.writerow([line, reason, *raw])

    def close(self) -> str | None:
        """Close the file; its path, or ``None`` when no row was rejected."""
        if self.handle is None:
            return None
        self.handle.close()
        return str(self.path)

    def discard(self) -> None:
        """Remove the file (the import failed as a whole)."""
        if self.handle is not None:
            self.handle.close()
            Path(self.path).unlink(missing_ok=True)
            self.handle = None
