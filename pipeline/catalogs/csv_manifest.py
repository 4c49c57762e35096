"""CSV manifest connector: one track per row, columns named by the partner's mapping.

Rows become manifest records (the JSONL format), so the same validation and normalisation
judge them. List cells (artists, uses, territories) are split on `list_separator`; an empty
cell means the field is absent. A row that cannot become a record is kept as an
InvalidRecord naming `file:line`, and the rest of the file goes on.
"""

from __future__ import annotations

import csv
import io
import itertools
import posixpath
from collections.abc import Iterator

from pipeline.catalogs.location import Delivery, DeliveryFile, open_delivery
from pipeline.catalogs.models import InvalidRecord, RawRecord
from pipeline.catalogs.normalise import id_problem
from pipeline.catalogs.partners import CsvMapping
from pipeline.catalogs.strict_json import is_text

OPTIONS = ("mapping",)

REQUIRED = ("track_id", "title", "artists", "audio", "license_id")
LISTS = frozenset({"artists", "uses", "territories", "excluded_territories"})
LICENCE = {
    "license_id": "id",
    "uses": "uses",
    "territories": "territories",
    "excluded_territories": "excluded_territories",
    "valid_from": "valid_from",
    "valid_until": "valid_until",
    "attribution": "attribution",
    "tdm_opt_out": "tdm_opt_out",
}
MAX_CELL = 10_000
BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def read(
    partner: str, location: str, mapping: CsvMapping | None = None
) -> Iterator[RawRecord | InvalidRecord]:
    """Raw records from every CSV file of the delivery (a folder, a `gs://` prefix, or one
    file or object), files in name order."""
    mapping = mapping or CsvMapping()
    delivery = open_delivery(location, "csv")
    files = delivery.files(mapping.files)
    if not files:
        raise FileNotFoundError(
            f"{delivery.root}: no file matches {mapping.files!r}; nothing delivered?"
        )
    numbers = itertools.count(1)
    for file in files:
        yield from _read_file(partner, delivery, file, mapping, numbers)


def _read_file(
    partner: str,
    delivery: Delivery,
    file: DeliveryFile,
    mapping: CsvMapping,
    numbers: Iterator[int],
) -> Iterator[RawRecord | InvalidRecord]:
    columns = mapping.columns.model_dump()
    explicit = mapping.columns.model_fields_set
    path, name = file.location, posixpath.basename(file.name)
    with io.TextIOWrapper(
        delivery.open(path), encoding="utf-8-sig", errors="surrogateescape", newline=""
    ) as handle:
        reader = csv.reader(handle, delimiter=mapping.delimiter)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            yield _invalid(partner, f"#{name}", path, "empty CSV file")
            return
        except csv.Error as exc:
            yield _invalid(partner, f"#{name}", f"{path}:1", f"unreadable header: {exc}")
            return
        position = {name: i for i, name in enumerate(header)}
        missing = [
            columns[f]
            for f in columns
            if (f in REQUIRED or f in explicit) and columns[f] not in position
        ]
        if missing:
            yield _invalid(
                partner,
                f"#{name}",
                f"{path}:1",
                f"header lacks column(s) {missing}; it has {header}",
            )
            return
        used = {field: position[name] for field, name in columns.items() if name in position}
        while True:
            line = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield _invalid(partner, f"#{name}:{line}", f"{path}:{line}", str(exc))
                continue
            if not any(cell.strip() for cell in row):
                continue
            number = next(numbers)
            source = f"{path}:{line}"
            if len(row) != len(header):
                yield _invalid(
                    partner,
                    _row_id(row, used, name, line),
                    source,
                    f"row has {len(row)} cells, the header has {len(header)}",
                    raw=_printable(mapping.delimiter.join(row)),
                )
                continue
            cells = {field: row[index].strip() for field, index in used.items()}
            problem = _unreadable(row)
            if problem:
                yield _invalid(partner, _row_id(row, used, name, line), source, problem)
                continue
            try:
                record = to_record(cells, mapping.list_separator)
            except Exception as exc:  # noqa: BLE001 - one row is invalid, the file goes on
                message = f"row cannot be read: {type(exc).__name__}: {exc}"[:500]
                yield _invalid(partner, _row_id(row, used, name, line), source, message)
                continue
            yield RawRecord(
                partner=partner, root=delivery.root, source=source, line=number, data=record
            )


def to_record(cells: dict[str, str], separator: str) -> dict:
    """A manifest record from CSV cells keyed by field; empty cells are left out."""
    record: dict = {}
    licence: dict = {}
    evidence: dict = {}
    for field, text in cells.items():
        if not text:
            continue
        value: object = text
        if field in LISTS:
            value = [part.strip() for part in text.split(separator) if part.strip()]
        elif field == "tdm_opt_out":
            value = BOOLEANS.get(text.lower(), text)
        if field in LICENCE:
            licence[LICENCE[field]] = value
        elif field.startswith("evidence_"):
            evidence[field.removeprefix("evidence_")] = value
        else:
            record[field] = value
    if evidence:
        licence["evidence"] = evidence
    if licence:
        record["license"] = licence
    return record


def _printable(text: str) -> str:
    """Undecodable bytes (kept as surrogates) shown as replacement characters."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _unreadable(row: list[str]) -> str | None:
    """Bytes that are not UTF-8 arrive as lone surrogates (surrogateescape): refuse the row
    rather than admit a title or an identifier with replacement characters in it."""
    for column, cell in enumerate(row, start=1):
        if not is_text(cell):
            return f"cell {column} is not UTF-8"
        if len(cell) > MAX_CELL:
            return f"cell {column} has {len(cell)} characters (at most {MAX_CELL})"
    return None


def _row_id(row: list[str], used: dict[str, int], name: str, line: int) -> str:
    index = used.get("track_id")
    if index is not None and index < len(row) and not _unreadable([row[index]]):
        if not id_problem(row[index].strip()):
            return row[index].strip()
    return f"#{name}:{line}"


def _invalid(
    partner: str, track_id: str, source: str, message: str, raw: str | None = None
) -> InvalidRecord:
    return InvalidRecord(
        partner=partner, track_id=track_id, source=source, message=message, raw=raw
    )
