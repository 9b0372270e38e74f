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

import contextlib
import json
import os
import stat
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Generic, TypeVar

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
    """Strict types (no '0.5' for a float), no infinite or NaN number, extra fields kept: forward-compatible,
    never silently wrong."""

    model_config = ConfigDict(strict=True, extra="allow", allow_inf_nan=False)


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
# total reads: a regular file in its own folder, of bounded size; never a hang, never unbounded memory

MIB = 1024 * 1024
# the most bytes a run file of each kind may hold (the largest written by a CIFAR-10 run is well under a
# tenth of these); anything larger is corrupt, not read
MAX_BYTES = {".json": 16 * MIB, ".jsonl": 256 * MIB, ".txt": 256 * MIB, ".lock": MIB, ".npz": 2048 * MIB,
             ".parquet": 2048 * MIB, ".gz": 256 * MIB, ".pt": 8192 * MIB, ".pt2": 8192 * MIB}
DEFAULT_MAX_BYTES = 256 * MIB
MAX_JSON_DEPTH = 32  # nesting of a run's JSON files: the deepest written is 4
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # what the tables (pandas, Arrow) hold in an integer column
_FILE_KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
               stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a folder"}


def max_bytes(path: Path) -> int:
    """The size limit of a run file by its suffix (MAX_BYTES)."""
    return MAX_BYTES.get(Path(path).suffix, DEFAULT_MAX_BYTES)


def _size(count: float) -> str:
    return f"{count / MIB:,.1f} MB" if count >= MIB else f"{count:,.0f} bytes"


@contextlib.contextmanager
def open_run_file(path: Path, limit: int | None = None) -> Iterator[BinaryIO]:
    """`path` opened for binary reading once it is known to be a regular file, in its own folder after links
    are resolved, of at most `limit` bytes (`max_bytes(path)` when None; 0: no limit, for a reader that reads
    only the end). ArtefactError (missing, or corrupt with the reason) otherwise; a FIFO or a device is
    never read from (opened without blocking, checked before the first read)."""
    path = Path(path)
    limit = max_bytes(path) if limit is None else limit
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise ArtefactError(path) from None
    except OSError as error:
        raise ArtefactError(path, f"cannot be read ({error.strerror or error})") from None
    try:
        info = os.fstat(fd)
    except OSError as error:
        os.close(fd)
        raise ArtefactError(path, f"cannot be read ({error.strerror or error})") from None
    if not stat.S_ISREG(info.st_mode):  # before fdopen, which refuses a folder with its own error
        os.close(fd)
        kind = _FILE_KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
        raise ArtefactError(path, f"is {kind}, not a regular file")
    with os.fdopen(fd, "rb") as handle:
        if os.path.dirname(os.path.realpath(path)) != os.path.realpath(path.parent):
            raise ArtefactError(path, "is a link to a file outside its run directory")
        if limit and info.st_size > limit:
            raise ArtefactError(path, f"is {_size(info.st_size)}, more than the {_size(limit)} such a file may hold")
        os.set_blocking(fd, True)
        yield handle


def read_run_bytes(path: Path, limit: int | None = None) -> bytes:
    """The bytes of a run file, read through `open_run_file` (at most its limit, even if it grows)."""
    limit = max_bytes(path) if limit is None else limit
    with open_run_file(path, limit) as handle:
        data = handle.read(limit + 1) if limit else handle.read()
    if limit and len(data) > limit:
        raise ArtefactError(path, f"grew past the {_size(limit)} such a file may hold while it was read")
    return data


def read_text_tail(path: Path, max_bytes_read: int = 64 * 1024) -> str:
    """The end of a text file that is only shown (a log): its last `max_bytes_read` bytes, decoded leniently
    (a torn or foreign byte becomes U+FFFD); '' when it does not exist. ArtefactError when it is not a regular
    file of its run directory."""
    try:
        with open_run_file(path, limit=0) as handle:
            size = os.fstat(handle.fileno()).st_size
            handle.seek(max(0, size - max_bytes_read))
            data = handle.read(max_bytes_read)
    except ArtefactError as error:
        if error.missing:
            return ""
        raise
    return data.decode("utf-8", errors="replace")


def gunzip_bounded(path: Path, data: bytes, limit: int = MAX_BYTES[".json"]) -> bytes:
    """gzip-compressed `data` (of the file `path`) decompressed to at most `limit` bytes: a small file that
    would expand without bound (a compression bomb) is corrupt, not read."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as error:
        raise ArtefactError(path, f"not gzip data ({error})") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise ArtefactError(path, f"expands to more than the {_size(limit)} such a file may hold")
    return out


# ------------------------------------------------------------------------------------------------
# JSON


def parse_json(path: Path, text: str | bytes) -> Any:
    """Parsed JSON, checked to nest at most MAX_JSON_DEPTH deep and to hold only integers a table column can
    (64-bit); ArtefactError (corrupt) otherwise."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ArtefactError(path, f"nested more than {MAX_JSON_DEPTH} levels deep") from None
    except ValueError as error:
        raise ArtefactError(path, f"not valid JSON ({error})") from None
    _check_json_values(path, value)
    return value


def _check_json_values(path: Path, value: Any) -> None:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise ArtefactError(path, f"nested more than {MAX_JSON_DEPTH} levels deep")
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
        elif isinstance(item, int) and not isinstance(item, bool) and not INT64_MIN <= item <= INT64_MAX:
            raise ArtefactError(path, f"holds the integer {shown(item)}, beyond the 64 bits a table holds")


def read_json_file(path: Path) -> Any:
    """Parsed JSON of `path` (a bounded, checked read: `read_run_bytes`, `parse_json`); ArtefactError when it is
    missing, unreadable, not UTF-8 or not JSON."""
    data = read_run_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ArtefactError(path, f"not UTF-8 text ({error.reason} at byte {error.start})") from None
    return parse_json(path, text)


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
    with open_run_file(path) as handle:
        try:
            with np.load(handle, allow_pickle=False) as data:
                return {key: data[key] for key in data.files}
        except Exception as error:  # noqa: BLE001 - zip, header or pickle problems all mean a corrupt file
            raise ArtefactError(path, f"not a readable .npz archive ({type(error).__name__}: {error})") from None


_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def read_npz_headers(path: Path) -> dict[str, ArrayHeader]:
    """Every array's header of an .npz (dtype, shape), reading none of the data; ArtefactError as above."""
    path = Path(path)
    headers = {}
    try:
        with open_run_file(path) as handle, zipfile.ZipFile(handle) as archive:
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


def values(array: Any) -> np.ndarray | None:
    """The data of an array, None for an ArrayHeader (a listing's check sees shapes only)."""
    return None if isinstance(array, ArrayHeader) else np.asarray(array)


def check_values(path: Path, key: str, array: Any, low: float | None = None, high: float | None = None) -> None:
    """Every value of `array` finite and within [low, high] (where given); nothing to check for a header."""
    data = values(array)
    if data is None or data.size == 0:
        return
    data = data.astype(np.float64, copy=False)
    if not np.isfinite(data).all():
        raise ArtefactError(path, f"array {key!r} holds {int((~np.isfinite(data)).sum())} NaN or infinite value(s)")
    if low is not None and data.min() < low:
        raise ArtefactError(path, f"array {key!r} holds {data.min():g}, below {low:g}")
    if high is not None and data.max() > high:
        raise ArtefactError(path, f"array {key!r} holds {data.max():g}, above {high:g}")


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
    import pyarrow.parquet as pq

    path = Path(path)
    with open_run_file(path) as handle:
        try:
            if columns_only:
                return pq.read_schema(handle).empty_table().to_pandas()
            return pq.read_table(handle).to_pandas()
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
