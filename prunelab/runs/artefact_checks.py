"""Checks of a run's array artefacts (gamma_history.npz, probe.npz, per_image.parquet) and of a whole run.

Each reader returns the file's content once it has the keys, dtypes and shapes the writers write
(`prunelab.methods.slimming.method`, `prunelab.methods.manidp.method`, docs/architecture.md), and otherwise raises
`ArtefactError` naming the file and saying whether it is missing or what is wrong with it.
`run_problems(path, method, state)` checks every artefact of one run for the listings.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from prunelab.config import METHOD_FACTS
from prunelab.runs.artefacts import ArtefactError, read_artefact_json
from prunelab.runs.run_format import (
    ACTIVE_STATES,
    GAMMA_HISTORY_FILE,
    PROBE_FILE,
    SUMMARY_FILE,
)

INTEGER, FLOAT, TEXT = "integer", "float", "text"
_KINDS = {INTEGER: "iu", FLOAT: "fiu", TEXT: "U"}  # numpy dtype kinds each role accepts


# ------------------------------------------------------------------------------------------------
# npz


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


def _array(path: Path, arrays: dict[str, np.ndarray], key: str, role: str, ndim: int,
           shape: tuple[int | None, ...] | None = None) -> np.ndarray:
    """arrays[key], checked for presence, dtype kind, number of dimensions and (where given) shape."""
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


def check_gamma_history(path: Path, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """epochs int [E+1], layer_names str [L], sparsity_lambda float [], layer_<i> float [E+1, C_i]."""
    epochs = _array(path, arrays, "epochs", INTEGER, 1)
    names = _array(path, arrays, "layer_names", TEXT, 1)
    _array(path, arrays, "sparsity_lambda", FLOAT, 0)
    for i in range(len(names)):
        _array(path, arrays, f"layer_{i}", FLOAT, 2, (len(epochs), None))
    return arrays


def check_probe(path: Path, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """indices, labels int [P]; layer_names str [L]; gates_/features_<i> [P, C_i]; T_/R_<i> [P, P]."""
    indices = _array(path, arrays, "indices", INTEGER, 1)
    size = len(indices)
    _array(path, arrays, "labels", INTEGER, 1, (size,))
    names = _array(path, arrays, "layer_names", TEXT, 1)
    for i in range(len(names)):
        gates = _array(path, arrays, f"gates_{i}", FLOAT, 2, (size, None))
        _array(path, arrays, f"features_{i}", FLOAT, 2, (size, gates.shape[1]))
        for key in ("T", "R"):
            _array(path, arrays, f"{key}_{i}", FLOAT, 2, (size, size))
    return arrays


NPZ_CHECKS: dict[str, Callable[[Path, dict[str, np.ndarray]], dict[str, np.ndarray]]] = {
    GAMMA_HISTORY_FILE: check_gamma_history, PROBE_FILE: check_probe,
}


def read_npz_artefact(path: Path) -> dict[str, np.ndarray]:
    """gamma_history.npz or probe.npz, read and checked (another .npz is only read)."""
    path = Path(path)
    arrays = read_npz_file(path)
    check = NPZ_CHECKS.get(path.name)
    return check(path, arrays) if check is not None else arrays


# ------------------------------------------------------------------------------------------------
# parquet

PER_IMAGE_COLUMNS = {"index": INTEGER, "label": INTEGER, "pred": INTEGER, "loss": FLOAT, "correct": "bool",
                     "difficulty": FLOAT, "macs": INTEGER, "gate_macs": INTEGER}
DENSITY_PREFIX = "density_"


def check_per_image(path: Path, frame: Any) -> Any:
    """The documented columns with their dtypes, at least one density_<layer> column, densities in [0, 1]."""
    import pandas as pd
    from pandas.api import types

    is_role = {INTEGER: types.is_integer_dtype, FLOAT: lambda d: types.is_float_dtype(d) or
               types.is_integer_dtype(d), "bool": types.is_bool_dtype}
    missing = [name for name in PER_IMAGE_COLUMNS if name not in frame.columns]
    if missing:
        raise ArtefactError(path, f"column(s) {', '.join(missing)} missing")
    for name, role in PER_IMAGE_COLUMNS.items():
        column = frame[name]
        all_null = name == "difficulty" and bool(column.isna().all())  # unknown difficulty: nulls
        if not all_null and not is_role[role](column.dtype):
            raise ArtefactError(path, f"column {name!r} should hold {role} values, has dtype {column.dtype}")
    densities = [c for c in frame.columns if str(c).startswith(DENSITY_PREFIX)]
    if not densities:
        raise ArtefactError(path, f"no {DENSITY_PREFIX}<layer> column")
    for name in densities:
        column = frame[name]
        if not types.is_float_dtype(column.dtype):
            raise ArtefactError(path, f"column {name!r} should hold float values, has dtype {column.dtype}")
        values = pd.to_numeric(column).to_numpy(dtype=float, na_value=np.nan)
        if len(values) and not ((values >= 0) & (values <= 1)).all():
            raise ArtefactError(path, f"column {name!r} has values outside [0, 1]")
    return frame


def read_per_image(path: Path) -> Any:
    """per_image.parquet as a DataFrame, read and checked."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise ArtefactError(path)
    try:
        frame = pd.read_parquet(path)
    except Exception as error:  # noqa: BLE001 - any pyarrow failure means a corrupt file
        raise ArtefactError(path, f"not a readable parquet file ({type(error).__name__}: {error})") from None
    return check_per_image(path, frame)


# ------------------------------------------------------------------------------------------------
# a whole run

# artefacts a finished (`done`) run of each method has written, besides summary.json: its facts'
# (prunelab.config.MethodFacts.artefacts); the listings check these and summary.json
REQUIRED_ARTEFACTS: dict[str, tuple[str, ...]] = {name: facts.artefacts for name, facts in METHOD_FACTS.items()}
CHECKED_ARTEFACTS: tuple[str, ...] = tuple(dict.fromkeys(
    [SUMMARY_FILE, *(name for artefacts in REQUIRED_ARTEFACTS.values() for name in artefacts)]))
# an artefact's reader by its suffix: JSON checked against its schema (prunelab.runs.artefacts.JSON_SCHEMAS),
# npz by its NPZ_CHECKS entry, parquet by per_image.parquet's column checks
ARTEFACT_READERS: dict[str, Callable[[Path], Any]] = {
    ".json": read_artefact_json, ".npz": read_npz_artefact, ".parquet": read_per_image,
}


def artefact_reader(name: str) -> Callable[[Path], Any]:
    """The reader of the artefact file `name` (ValueError for a file no reader reads)."""
    suffix = Path(name).suffix
    if suffix not in ARTEFACT_READERS:
        raise ValueError(f"no artefact reader for {name!r} (readers: {', '.join(ARTEFACT_READERS)})")
    return ARTEFACT_READERS[suffix]


def read_artefact(path: Path) -> Any:
    """Any checked artefact by file name: a dict (JSON), arrays (npz) or a DataFrame (parquet)."""
    path = Path(path)
    return artefact_reader(path.name)(path)


def run_problems(path: Path, method: str, state: str) -> list[str]:
    """What is wrong with the artefacts of one run: '<file> is missing' / '<file> is corrupt: ...'.

    Files of a queued or running run are not checked (they may be mid-write); a `done` run must have
    summary.json and its method's artefacts.
    """
    if state in ACTIVE_STATES:  # artefacts may be mid-write: checked by the pages when read
        return []
    required = (SUMMARY_FILE, *REQUIRED_ARTEFACTS.get(method, ())) if state == "done" else ()
    problems = []
    for name in CHECKED_ARTEFACTS:
        file = Path(path) / name
        try:
            stat = file.stat()
        except FileNotFoundError:
            if name in required:
                problems.append(f"{name} is missing (a finished {method} run writes it)")
            continue
        except OSError as error:
            problems.append(f"{name} cannot be read ({error})")
            continue
        problem = _file_problem(str(file), stat.st_mtime_ns, stat.st_size)
        if problem is not None:
            problems.append(problem)
    return problems


@functools.lru_cache(maxsize=1024)
def _file_problem(file: str, mtime_ns: int, size: int) -> str | None:
    """None when the file reads and checks cleanly (cached per file version)."""
    try:
        read_artefact(Path(file))
    except ArtefactError as error:
        return error.short
    return None
