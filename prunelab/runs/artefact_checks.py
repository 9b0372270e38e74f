"""Every artefact a run may hold, found by file name, and the check of a whole run for the listings.

The core's files (`prunelab.runs.artefacts.CORE_ARTEFACTS`) and each method's own (its facts'
`artefacts`, declared in `prunelab.methods.<name>.artefacts`) make one registry: `artefact_for(name)`.
`read_artefact(path)` reads any of them by file name; `run_problems(path, method, state)` checks one
run for the runs table: the JSON files fully, npz and parquet files by their headers and schema (a
page reading the file checks its content), each file once per version.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from prunelab.runs.reading import Artefact, ArtefactError, check_json, read_json_file
from prunelab.runs.run_format import ACTIVE_STATES, SUMMARY_FILE


@functools.cache
def _registry() -> tuple[dict[str, Artefact[Any]], dict[str, tuple[str, ...]]]:
    """(every artefact by file name, the files a finished run of each method must have besides summary.json)."""
    from prunelab.config import METHOD_FACTS
    from prunelab.runs.artefacts import CORE_ARTEFACTS

    by_name = {artefact.file: artefact for artefact in CORE_ARTEFACTS}
    required = {}
    for method, facts in METHOD_FACTS.items():
        required[method] = tuple(artefact.file for artefact in facts.artefacts)
        by_name.update({artefact.file: artefact for artefact in facts.artefacts})
    return by_name, required


def artefact_for(name: str) -> Artefact[Any] | None:
    """The artefact stored under file name `name` (None for a file no reader knows)."""
    return _registry()[0].get(name)


def required_artefacts(method: str) -> tuple[str, ...]:
    """The files a finished run of `method` writes besides summary.json (none for an unknown method)."""
    return _registry()[1].get(method, ())


def checked_artefacts() -> tuple[str, ...]:
    """The files the listings check: summary.json and every method's artefacts."""
    return tuple(dict.fromkeys([SUMMARY_FILE, *(name for names in _registry()[1].values() for name in names)]))


def read_artefact(path: Path) -> Any:
    """Any registered artefact by file name, read and checked: a dict (JSON), arrays (npz) or a DataFrame
    (parquet); ValueError for a file no reader reads."""
    path = Path(path)
    artefact = artefact_for(path.name)
    if artefact is None:
        raise ValueError(f"no artefact reader for {path.name!r} (known: {', '.join(sorted(_registry()[0]))})")
    return artefact.read(path)


def validate_json(path: Path, raw: Any) -> dict[str, Any]:
    """`raw` checked against the schema of `path`'s file name (a core or a method's JSON artefact, when it is
    one); returns it unchanged (a dict)."""
    known = artefact_for(Path(path).name)
    return check_json(Path(path), raw, known.schema if known is not None else None)


def read_artefact_json(path: Path) -> dict[str, Any]:
    """Read and validate one JSON artefact (status, summary, a method's JSON files)."""
    return validate_json(path, read_json_file(path))


def run_problems(path: Path, method: str, state: str) -> list[str]:
    """What is wrong with the artefacts of one run: '<file> is missing' / '<file> is corrupt: ...'.

    Files of a queued or running run are not checked (they may be mid-write); a `done` run must have
    summary.json and its method's artefacts.
    """
    if state in ACTIVE_STATES:  # artefacts may be mid-write: checked by the pages when read
        return []
    required = (SUMMARY_FILE, *required_artefacts(method)) if state == "done" else ()
    problems = []
    for name in checked_artefacts():
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
    """None when the file passes its listing check (cached per file version)."""
    path = Path(file)
    artefact = artefact_for(path.name)
    try:
        if artefact is not None:
            artefact.check(path)
    except ArtefactError as error:
        return error.short
    return None
