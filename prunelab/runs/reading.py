"""How one run file is read and checked: `Artefact`, `ArtefactError` and the JSON, npz and parquet readers.

The bottom of run reading (it imports nothing of prunelab but `run_format`), so that the core's files
(`prunelab.runs.artefacts`) and each method's own (`prunelab.methods.<name>.artefacts`, declared in the
method's facts) are built from the same pieces, and `prunelab.runs.run.Run` reads every one of them the same
way: checked on read, cached by file version.

An `Artefact` pairs a file name with its reader (the content, checked: ArtefactError when the file is
missing or corrupt), a cheaper `probe` for the listings (npz: the arrays' headers, parquet: the schema;
the full check runs when a page reads the file) and `parse`, which turns the checked content into the
typed object a reader gets (e.g. slimming's `GammaHistory`).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from prunelab.runs.run_format import RunStoreError

MAX_SHOWN = 40  # characters of a bad value quoted in an error message
T = TypeVar("T")


class ArtefactError(RunStoreError):
    """A run file is missing or corrupt; `short` is '<file>: <problem>' for tables."""

    def __init__(self, path: Path, problem: str | None = None) -> None:
        self.path = Path(path)
        self.missing = problem is None
        self.problem = "is missing" if problem is None else f"is corrupt: {problem}"
        super().__init__(f"{self.path} {self.problem}")

    @property
    def short(self) -> str:
        return f"{self.path.name} {self.problem}"


def describe_errors(error: ValidationError) -> str:
    """'field.path: message (got value)' for each problem, joined by '; '."""
    parts = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"])
        got = "" if item["type"] == "missing" else f" (got {shown(item.get('input'))})"
        parts.append(f"{where}: {item['msg']}{got}" if where else f"{item['msg']}{got}")
    return "; ".join(parts)


def shown(value: Any) -> str:
    """`value`'s repr, cut to MAX_SHOWN characters (a bad value quoted in a message)."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


class Schema(BaseModel):
    """Strict types (no '0.5' for a float), extra fields kept: forward-compatible, never silently wrong."""

    model_config = ConfigDict(strict=True, extra="allow")


Fraction = Field(ge=0.0, le=1.0)


class Verification(Schema):
    """A check a method ran on its own result: the largest difference found and whether it passed."""

    max_abs_diff: float
    passed: bool


# ------------------------------------------------------------------------------------------------
# an artefact


@dataclass(frozen=True)
class Artefact(Generic[T]):
    """One file of a run and how it is read (see the module docstring)."""

    file: str
    read: Callable[[Path], Any]  # the file's checked content; ArtefactError when missing or corrupt
    parse: Callable[[Any, Any], T] | None = None  # (checked content, the Run) -> what readers get
    probe: Callable[[Path], Any] | None = None  # a cheaper check for listings (None: `read`)
    absent: Callable[[], T] | None = None  # what a reader gets when the file is missing (None: None)
    schema: type[BaseModel] | None = None  # a JSON file's pydantic model (shown in docs and tests)

    def check(self, path: Path) -> None:
        """Raise ArtefactError when the file at `path` is missing or fails its (listing) check."""
        (self.probe or self.read)(Path(path))


# ------------------------------------------------------------------------------------------------
# JSON


def read_json_file(path: Path) -> Any:
    """Parsed JSON of `path`; ArtefactError when it is missing, unreadable or not JSON."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ArtefactError(path) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ArtefactError(path, f"cannot be read ({error})") from None
    try:
        return json.loads(text)
    except ValueError as error:
        raise ArtefactError(path, f"not valid JSON ({error})") from None


def check_json(path: Path, raw: Any, schema: type[BaseModel] | None) -> dict[str, Any]:
    """`raw` checked to be an object that satisfies `schema` (when given); returns it unchanged."""
    if not isinstance(raw, dict):
        raise ArtefactError(path, f"expected a JSON object, got {type(raw).__name__} {shown(raw)}")
    if schema is not None:
        try:
            schema.model_validate(raw)
        except ValidationError as error:
            raise ArtefactError(path, describe_errors(error)) from None
    return raw


def json_artefact(file: str, schema: type[BaseModel], parse: Callable[[Any, Any], T] | None = None) -> Artefact[T]:
    """A JSON object file checked against `schema` (a pydantic model)."""
    return Artefact(file, lambda path: check_json(path, read_json_file(path), schema), parse, schema=schema)


# ------------------------------------------------------------------------------------------------
# npz

INTEGER, FLOAT, TEXT = "integer", "float", "text"
_KINDS = {INTEGER: "iu", FLOAT: "fiu", TEXT: "U"}  # numpy dtype kinds each role accepts


@dataclass(frozen=True)
class ArrayHeader:
    """What an .npy header says of its array (dtype and shape), without reading the data."""

    dtype: np.dtype
    shape: tuple[int, ...]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]


Arrays = Mapping[str, "np.ndarray | ArrayHeader"]


def read_npz_file(path: Path) -> dict[str, np.ndarray]:
    """Every array of an .npz (no pickles); ArtefactError when missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise ArtefactError(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except Exception as error:  # noqa: BLE001 - zip, header or pickle problems all mean a corrupt file
        raise ArtefactError(path, f"not a readable .npz archive ({type(error).__name__}: {error})") from None


_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def read_npz_headers(path: Path) -> dict[str, ArrayHeader]:
    """Every array's header of an .npz (dtype, shape), reading none of the data; ArtefactError as above."""
    path = Path(path)
    if not path.is_file():
        raise ArtefactError(path)
    headers = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with archive.open(info) as handle:
                    version = np.lib.format.read_magic(handle)
                    if version not in _HEADER_READERS:  # a newer format: read the array itself
                        return {key: ArrayHeader(a.dtype, a.shape) for key, a in read_npz_file(path).items()}
                    shape, _, dtype = _HEADER_READERS[version](handle)
                headers[info.filename[:-4]] = ArrayHeader(dtype, tuple(shape))
    except ArtefactError:
        raise
    except Exception as error:  # noqa: BLE001 - zip or header problems mean a corrupt file
        raise ArtefactError(path, f"not a readable .npz archive ({type(error).__name__}: {error})") from None
    return headers


def check_array(path: Path, arrays: Arrays, key: str, role: str, ndim: int,
                shape: tuple[int | None, ...] | None = None) -> Any:
    """arrays[key] (an array or its header), checked for presence, dtype kind, number of dimensions and
    (where given) shape."""
    if key not in arrays:
        raise ArtefactError(path, f"array {key!r} is missing (has: {', '.join(sorted(arrays)) or 'none'})")
    value = arrays[key]
    if value.dtype.kind not in _KINDS[role]:
        raise ArtefactError(path, f"array {key!r} should hold {role} values, has dtype {value.dtype}")
    if value.ndim != ndim:
        raise ArtefactError(path, f"array {key!r} should have {ndim} dimension(s), has shape {value.shape}")
    if shape is not None and any(want is not None and want != got for want, got in zip(shape, value.shape,
                                                                                         strict=True)):
        wanted = tuple("any" if want is None else want for want in shape)
        raise ArtefactError(path, f"array {key!r} should have shape {wanted}, has {value.shape}")
    return value


def npz_artefact(file: str, check: Callable[[Path, Arrays], Any],
                 parse: Callable[[Any, Any], T] | None = None) -> Artefact[T]:
    """An .npz whose arrays `check(path, arrays)` accepts (raising ArtefactError otherwise); the listings
    run the same check on the arrays' headers."""
    def read(path: Path) -> dict[str, np.ndarray]:
        arrays = read_npz_file(path)
        check(path, arrays)
        return arrays

    return Artefact(file, read, parse, probe=lambda path: check(path, read_npz_headers(path)))


# ------------------------------------------------------------------------------------------------
# parquet


def read_parquet_file(path: Path, columns_only: bool = False) -> Any:
    """A parquet file as a DataFrame (with `columns_only`, its columns and dtypes and no rows, from the
    file's schema); ArtefactError when missing or unreadable."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise ArtefactError(path)
    try:
        if columns_only:
            import pyarrow.parquet as pq

            return pq.read_schema(path).empty_table().to_pandas()
        return pd.read_parquet(path)
    except Exception as error:  # noqa: BLE001 - any pyarrow failure means a corrupt file
        raise ArtefactError(path, f"not a readable parquet file ({type(error).__name__}: {error})") from None


def parquet_artefact(file: str, check: Callable[[Path, Any], Any],
                     parse: Callable[[Any, Any], T] | None = None) -> Artefact[T]:
    """A parquet table that `check(path, frame)` accepts; the listings check its columns only."""
    def read(path: Path) -> Any:
        frame = read_parquet_file(path)
        check(path, frame)
        return frame

    return Artefact(file, read, parse, probe=lambda path: check(path, read_parquet_file(path, columns_only=True)))
