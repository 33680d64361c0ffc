"""Event files on disk -> rows of scalars and hparams, without importing TensorFlow.

Reads the TFRecord framing itself (``lossboard.events.framing``), verifies every
checksum, and decodes ``tf.summary.scalar`` records many at a time
(``lossboard.events.decode``), so ``lossboard compare`` starts in a fraction of a
second and a root of millions of points loads into columns, not Python
objects. Tolerates runs being written while they are read and a truncated last
record of a folder's newest event file (a writer at work, or killed). A corrupt
record, a record cut short that will never be completed (whole records follow
it, or a later file exists and this one is not growing), or something named like
an event file that cannot be read, costs an ``EventFileWarning`` and the data
after it in that file, never an exception. Paths with a scheme (``gs://``, ...) are
read through ``tf.io.gfile`` (``lossboard.events.files``).
"""

from __future__ import annotations

import fnmatch
import functools
import os
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from lossboard.events import decode as events
from lossboard.events import files
from lossboard.events import framing as records_
from lossboard.layout import AGGREGATE_MARKER, EPOCH_PREFIX, SPLITS
from lossboard.reader import table as table_
from lossboard.reader.table import Piece, Table
from lossboard.warn import LossboardRuntimeWarning, warn

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

SPLIT_DIRS = SPLITS  # the split folders of Keras' layout
COLUMNS = ["run", "split", "tag", "step", "value", "wall_time"]
_BLOCK = 8 << 20  # bytes read at a time
_SMALL = 16 << 10  # files up to this size are read many at a time (``_read_batch``)
_BATCH = 1024  # files per ``_read_batch``


class EventFileWarning(LossboardRuntimeWarning):
    """An event file, or a part of one, was skipped: it is corrupt or unreadable, holds
    scalar summaries that are not one real number, or is a second name of a folder read."""


@dataclass(frozen=True)
class Point:
    """One scalar read back: a row of ``lossboard.load``."""

    run: str
    split: str
    tag: str
    step: int
    value: float
    wall_time: float


@dataclass
class _Tags:
    """Tag names met so far, each with a code, and which are wanted."""

    wanted: Callable[[str], bool]
    names: list[str] = field(default_factory=list)
    codes: dict[str, int] = field(default_factory=dict)

    def code(self, name: str) -> int:
        """The tag's code, or -1 when it is not wanted."""
        found = self.codes.get(name)
        if found is None:
            found = len(self.names) if self.wanted(name) else -1
            self.codes[name] = found
            if found >= 0:
                self.names.append(name)
        return found


def _matcher(tags: Iterable[str] | None) -> Callable[[str], bool]:
    if tags is None:
        return lambda name: True
    if isinstance(tags, str):
        tags = [tags]
    patterns = list(tags)
    return lambda name: any(fnmatch.fnmatchcase(name, p) for p in patterns)


def records(path: str) -> Iterator[bytes]:
    """The verified records of one TFRecord file, in order.

    Stops at a truncated last record silently (a writer still at work or
    killed), and at a corrupt one, or a truncated one that whole records follow,
    with an ``EventFileWarning``.

    Examples:
        >>> list(records("no-such.tfevents"))  # doctest: +SKIP
        []
    """
    for block, frames, offset in _blocks(path):
        bad = records_.first_bad_data(block, frames.starts, frames.lengths)
        count = len(frames.starts) if bad is None else bad
        for start, length in zip(
            frames.starts[:count].tolist(), frames.lengths[:count].tolist(), strict=True
        ):
            yield block[start : start + length].tobytes()
        if bad is not None:
            _warn_corrupt(path, offset + int(frames.starts[bad]) - records_.HEADER, "data")
            return


def _blocks(path: str, last: bool = True) -> Iterator[tuple[np.ndarray, records_.Frames, int]]:
    """``(block, its records, offset of the block)`` of a file; length checksums verified.

    Warns (and ends) at a corrupt length; data checksums are the caller's to check,
    for the records it needs. A file that ends inside a record warns too, unless it may
    be a writer at work (see ``_warn_if_cut``); ``last``: whether it is the last event file
    of its folder.
    """
    try:
        handle, size = files.open_sized(path)
    except OSError as error:
        _warn(f"skipped {error}: expected a readable event file. Remove it or fix its permissions.")
        return
    with handle:
        offset, carry, want = 0, np.zeros(0, np.uint8), _BLOCK
        while True:
            block = _read_after(handle, carry, max(0, min(want, size - offset - len(carry))))
            at_end = offset + len(block) >= size or len(block) == len(carry)
            frames = records_.frame(block)
            yield block, frames, offset
            if frames.bad_header:
                _warn_corrupt(path, offset + frames.end, "length")
                return
            if at_end:
                if frames.end < len(block):
                    _warn_if_cut(path, block, frames.end, offset, size, last)
                return
            carry, offset = block[frames.end :], offset + frames.end
            want = _BLOCK
            if len(carry) >= records_.HEADER:  # a record longer than a block: read all of it
                length = int(records_.at(carry, np.zeros(1, np.int64), "<u8")[0])
                want = max(_BLOCK, length + records_.OVERHEAD - len(carry))


def _warn_if_cut(
    path: str, block: np.ndarray, end: int, offset: int, size: int, last: bool
) -> None:
    """Warns about a file that ends inside a record, unless it may be a writer at work.

    TensorBoard reads such a record as one still being written, and waits for the rest.
    So does this reader (silently) when the record is the last thing in the newest event
    file of its folder: a writer at work, or one that was killed mid-record (that record
    was never whole). Otherwise the record will never be completed, and what it covers is
    lost: when a whole record starts inside it (a write was cut short, by a full disk, and
    writing went on after it: TensorBoard cannot read those records either), or when a
    later event file of the folder exists and this file is not growing.
    """
    cut = offset + end
    follows = records_.first_whole_record(block, end)
    if follows is None:
        if last or _size_now(path) != size:
            return
        why = (
            "a later event file of its folder exists and this one is not growing: its "
            "writer stopped inside the record (a full disk, a file size limit or a killed "
            "process)"
        )
    else:
        why = (
            f"a whole record starts inside it, at byte {offset + follows}: the write of the "
            "record was cut short (a full disk?) and writing went on after it, so the "
            "record will never be completed and what follows it cannot be read (by "
            "TensorBoard either)"
        )
    _warn(
        f"{path}: the record at byte {cut} is cut short; {why}. Skipped the {size - cut} "
        f"bytes from byte {cut} to the end of the file. If that was a LossLogger's epoch "
        "end, it raised OSError and wrote the epoch again to a new file when retried."
    )


def _size_now(path: str) -> int:
    """The size of ``path`` now (-1 when it cannot be read)."""
    try:
        handle, size = files.open_sized(path)
    except OSError:
        return -1
    handle.close()
    return size


def _read_after(handle: Any, carry: np.ndarray, count: int) -> np.ndarray:
    """``carry`` and up to ``count`` more bytes of the file, zero-padded (see ``events.PAD``)."""
    buffer = np.zeros(len(carry) + count + events.PAD, np.uint8)
    buffer[: len(carry)] = carry
    if hasattr(handle, "readinto"):
        got = handle.readinto(buffer.data[len(carry) : len(carry) + count])
    else:  # tf.io.gfile
        chunk = handle.read(count)
        got = len(chunk)
        buffer[len(carry) : len(carry) + got] = np.frombuffer(chunk, np.uint8)
    return buffer[: len(carry) + (got or 0)]


def _warn(message: str) -> None:
    warn(message, EventFileWarning)


def _warn_corrupt(path: str, offset: int, what: str) -> None:
    _warn(
        f"{path}: the record at byte {offset} is corrupt (its {what} does not match its "
        "checksum or is not an event); kept the records before it and skipped the rest of "
        "this file. Restore the file from a copy, or delete it if the rest is not needed."
    )


def _read_batch(paths: Sequence[str], tags: _Tags) -> dict[str, tuple[Piece, dict[str, Any]]]:
    """``_read_points`` of many small files at once: those of ``paths`` that are sound.

    Fast path: a run of a few epochs leaves files of a few records each, and the vectorized
    path's fixed cost (~500 us of NumPy calls a file) made reading thousands of runs slow.
    Here the files' bytes are joined into one block (their records found in step, see
    ``framing.chains``) and checked and decoded by the same vectorized code, once for all
    of them. A file that is not plainly sound (larger than ``_SMALL``, remote, unreadable,
    cut, corrupt, a record that is not an event, a value to warn about) is left out of the
    result, for the vectorized path to read and report one by one: the results are the same
    either way.
    """
    datas: list[bytes] = []
    read: list[str] = []
    for path in paths:
        if files.is_remote(path):
            continue
        try:
            handle, size = files.open_sized(path)  # stats first: never opens a FIFO
        except OSError:
            continue
        with handle:
            data = handle.read(_SMALL + 1) if size <= _SMALL else b""
        if 0 < len(data) <= _SMALL and len(data) == size:
            read.append(path)
            datas.append(data)
    bounds = np.cumsum([0] + [len(d) for d in datas])
    offset = int(bounds[-1])
    padded_block = np.zeros(offset + events.PAD, np.uint8)
    padded_block[:offset] = np.frombuffer(b"".join(datas), np.uint8)
    block = padded_block[:offset]
    start, length, owner = records_.chains(padded_block, bounds)
    sound = np.unique(owner)
    kept = [read[k] for k in sound.tolist()]
    owner = np.searchsorted(sound, owner)
    heads = start - records_.HEADER
    bad = records_.masked_crc32c_at(block, heads, 8) != records_.at(block, heads + 8, "<u4")
    bad |= records_.bad_data(block, start, length)
    refused = set(owner[bad].tolist())
    while True:
        # Decoding registers the tags it meets: a file refused only then (a record that is
        # no event, a value to warn about) is left out and the rest decoded again, so no
        # tag of a refused file is named unless its own path names it.
        trial = _Tags(tags.wanted, list(tags.names), dict(tags.codes))
        kept_records = np.flatnonzero(~np.isin(owner, list(refused)))
        done, late = _decode_batch(block, start[kept_records], length[kept_records],
                                   owner[kept_records], len(kept), trial)  # fmt: skip
        if not late:
            break
        refused |= late
    tags.names[:], tags.codes = trial.names, trial.codes
    return {path: done[k] for k, path in enumerate(kept) if k not in refused}


def _decode_batch(
    block: np.ndarray,
    start: np.ndarray,
    length: np.ndarray,
    owner: np.ndarray,
    files_count: int,
    tags: _Tags,
) -> tuple[dict[int, tuple[Piece, dict[str, Any]]], set[int]]:
    """``_read_batch``'s decoding of sound records: each file's points and hparams, and the
    files to refuse (a record that is no event, or a value to warn about)."""
    layout = events.scalar_layout(block, start, length)
    code = _layout_tags(layout, tags)
    plugin_of: dict[int, dict[str, str]] = {}
    skipped: dict[int, dict[str, list]] = {}
    hparams: dict[int, dict[str, Any]] = {}
    refused: set[int] = set()
    order: list[int] = []
    found_points: list[tuple] = []
    for i in np.flatnonzero(~layout.ok).tolist():
        k = int(owner[i])
        if k in refused:
            continue
        record = block[start[i] : start[i] + length[i]].tobytes()
        try:
            points, record_hparams = events.decode(
                record, plugin_of.setdefault(k, {}), skipped.setdefault(k, {})
            )
        except events.NotAnEvent:
            refused.add(k)
            continue
        hparams.setdefault(k, {}).update(record_hparams)
        for tag, step, value, wall_time in points:
            tag_code = tags.code(tag)
            if tag_code >= 0:
                order.append(i)
                found_points.append((tag_code, step, value, wall_time))
    refused |= {k for k, why in skipped.items() if why}
    if refused:
        return {}, refused
    keep = np.flatnonzero(layout.ok & (code >= 0))
    piece = Piece(code[keep], layout.step(keep), layout.value(keep), layout.wall_time(keep))
    rows = keep
    if found_points:
        columns = zip(*found_points, strict=True)
        slow = Piece(*(np.array(c, d) for c, d in zip(columns, table_.DTYPES, strict=True)))
        piece = Piece.concat([piece, slow])
        rows = np.concatenate([keep, np.array(order, np.int64)])
    by_record = np.argsort(rows, kind="stable")  # each file's points in its record order
    piece = Piece(*(getattr(piece, f)[by_record] for f in table_.FIELDS))
    bounds = np.searchsorted(owner[rows[by_record]], np.arange(files_count + 1))
    return {
        k: (
            Piece(*(getattr(piece, f)[bounds[k] : bounds[k + 1]] for f in table_.FIELDS)),
            hparams.get(k, {}),
        )
        for k in range(files_count)
    }, set()


def _read_points(path: str, tags: _Tags, last: bool = True) -> tuple[Piece, dict[str, Any]]:
    """The wanted scalar points of one file as columns, and its hparams (``last``: whether it
    is the last event file of its folder, see ``_blocks``)."""
    pieces: list[Piece] = []
    hparams: dict[str, Any] = {}
    plugin_of: dict[str, str] = {}  # TF2 may write a tag's metadata with its first value only
    skipped: dict[str, list] = {}  # scalars-plugin values that are not one real number
    for block, frames, offset in _blocks(path, last):
        piece, block_hparams, bad = _decode(block, frames, tags, plugin_of, skipped)
        pieces.append(piece)
        hparams.update(block_hparams)
        if bad is not None:
            _warn_corrupt(path, offset + int(frames.starts[bad]) - records_.HEADER, "data")
            break
    _warn_skipped(path, {tag: why for tag, why in skipped.items() if tags.wanted(tag)})
    return Piece.concat(pieces), hparams


def _warn_skipped(path: str, skipped: dict[str, list]) -> None:
    """Warns once for a file about its scalar summaries that are not one real number."""
    if not skipped:
        return
    listed = ", ".join(
        f"{tag!r} ({what}, {count} point{'s' if count > 1 else ''})"
        for tag, (what, count) in sorted(skipped.items())
    )
    _warn(
        f"{path}: left out the scalar summaries of tag(s) {listed}: expected one real number "
        "(a float, int or bool tensor of one element), as TensorBoard's Scalars dashboard "
        "plots. Write such a value as one number, e.g. tf.summary.scalar(tag, "
        "tf.cast(value, tf.float32), step) (tf.math.real or tf.reduce_mean first)."
    )


def _layout_tags(layout: events.Layout, tags: _Tags) -> np.ndarray:
    """Tag codes of the records in scalar layout (-1: not wanted); clears ``ok`` of bad tags."""
    code = np.full(len(layout.ok), -1, np.int32)
    rows = np.flatnonzero(layout.ok)
    firsts, group_of = events.group_tags(layout, rows)
    codes = np.empty(len(firsts), np.int32)
    for i, first in enumerate(firsts.tolist()):
        start = int(layout.tag_start[first])
        raw = layout.block[start : start + int(layout.tag_length[first])].tobytes()
        try:
            codes[i] = tags.code(raw.decode("utf-8"))
        except UnicodeDecodeError:
            codes[i] = -2  # not valid UTF-8: the protos decide (and reject it)
    code[rows] = codes[group_of]
    layout.ok &= code != -2
    return code


def _decode(
    block: np.ndarray,
    frames: records_.Frames,
    tags: _Tags,
    plugin_of: dict[str, str],
    skipped: dict[str, list] | None = None,
) -> tuple[Piece, dict[str, Any], int | None]:
    """Points of a block's records, its hparams, and the index of a record that is no event.

    ``skipped`` collects the scalar summaries that are not one number (see ``events.decode``).
    """
    layout = events.scalar_layout(block, frames.starts, frames.lengths)
    code = _layout_tags(layout, tags)
    needed = np.flatnonzero(~layout.ok | (code >= 0))  # the rest is skipped unread
    bad_crc = records_.first_bad_data(block, frames.starts[needed], frames.lengths[needed])
    bad = None if bad_crc is None else int(needed[bad_crc])
    hparams: dict[str, Any] = {}
    order: list[int] = []
    found: list[tuple] = []
    for i in np.flatnonzero(~layout.ok[:bad]).tolist():
        start = int(frames.starts[i])
        record = block[start : start + int(frames.lengths[i])].tobytes()
        try:
            points, record_hparams = events.decode(record, plugin_of, skipped)
        except events.NotAnEvent:
            bad = i
            break
        hparams.update(record_hparams)
        for tag, step, value, wall_time in points:
            tag_code = tags.code(tag)
            if tag_code >= 0:
                order.append(i)
                found.append((tag_code, step, value, wall_time))
    fast = layout.ok & (code >= 0)
    if bad is not None:
        fast[bad:] = False
    keep = np.flatnonzero(fast)
    piece = Piece(code[keep], layout.step(keep), layout.value(keep), layout.wall_time(keep))
    if found:
        slow = Piece(
            *(np.array(c, d) for c, d in zip(zip(*found, strict=True), table_.DTYPES, strict=True))
        )
        piece = Piece.concat([piece, slow])
        by_record = np.argsort(np.concatenate([keep, order]), kind="stable")
        piece = Piece(*(getattr(piece, f)[by_record] for f in table_.FIELDS))
    return piece, hparams, bad


def event_files(root: str, aggregated: list[str] | None = None) -> Iterator[str]:
    """Every TensorBoard event file under ``root``, in a stable order.

    Anything whose name contains ``tfevents`` counts, folders too (reading one
    warns), so nothing named like an event file is passed over in silence.
    Symlinked folders are followed; a folder reached under a second name (a
    symlink loop, a ``latest`` link) is read once, with an ``EventFileWarning``.
    ``aggregated``, when given, gets the folders (relative to ``root``) that hold the
    marker ``lossboard aggregate`` leaves, found on the same walk.

    Examples:
        >>> list(event_files("."))
        []
    """
    aliases: list[tuple[str, str, str]] = []
    for directory, dirs, names in files.walk(root, aliases):
        if aggregated is not None and AGGREGATE_MARKER in names:
            aggregated.append("/".join(files.relative_parts(root, directory)))
        for name in sorted(names + [d for d in dirs if "tfevents" in d]):
            if "tfevents" in name:
                yield files.join(directory, name)
    for link, target, walked in aliases:
        _warn(
            f"{link!r} is a second name of the folder {target!r}, read as {walked!r} (a "
            "symlink loop, or a link to a run read already): its event files were read once, "
            "under that name. Remove the link, or read the folder it points to on its own, "
            "if you meant another run."
        )


def run_and_split(
    root: str, path: str, runs_with_splits: Container[tuple[str, ...]] = ()
) -> tuple[str, str]:
    """``(run, split)`` of an event file: ``<root>/<run>/<split>/events...``.

    The file's folder is a split when it is named ``train`` or ``validation`` and
    is not a run itself: a run named ``train`` holds split folders of its own,
    so its relative folder parts are in ``runs_with_splits`` (see
    ``split_parents``) and its own files (its hparams) belong to it.

    Examples:
        >>> run_and_split("logs", "logs/a/train/events.out.tfevents.1")
        ('a', 'train')
        >>> runs = split_parents("logs", ["logs/train/train/events.out.tfevents.1"])
        >>> run_and_split("logs", "logs/train/events.out.tfevents.2", runs)
        ('train', '')
    """
    return _run_and_split(_parts(root, files.dirname(path), os.getcwd()), runs_with_splits)


def _run_and_split(
    parts: tuple[str, ...], runs_with_splits: Container[tuple[str, ...]]
) -> tuple[str, str]:
    if parts and parts[-1] in SPLIT_DIRS and parts not in runs_with_splits:
        return "/".join(parts[:-1]) or ".", parts[-1]
    return "/".join(parts) or ".", ""


@functools.lru_cache(maxsize=1 << 16)
def _parts(root: str, folder: str, cwd: str) -> tuple[str, ...]:
    """``files.relative_parts``, kept: a dashboard's reloads name the same folders again
    (``cwd``: the working directory, which a relative path depends on)."""
    return tuple(files.relative_parts(root, folder))


def split_parents(root: str, paths: Iterable[str]) -> set[tuple[str, ...]]:
    """The folders (relative parts) that hold a split folder with event files: runs.

    Examples:
        >>> sorted(split_parents("logs", ["logs/a/validation/events.out.tfevents.1"]))
        [('a',)]
    """
    cwd = os.getcwd()
    return _split_parents(_parts(root, files.dirname(path), cwd) for path in paths)


def _split_parents(folders: Iterable[tuple[str, ...]]) -> set[tuple[str, ...]]:
    return {parts[:-1] for parts in folders if parts and parts[-1] in SPLIT_DIRS}


def read_file(
    path: str, run: str, split: str, *, tags: Iterable[str] | None = None
) -> tuple[list[Point], dict[str, Any]]:
    """Scalar points and hparams of one event file, in the order they were written.

    Args:
        path: The event file.
        run: The run name to put in each point.
        split: The split name to put in each point.
        tags: Tag names or shell patterns (``"epoch_*"``) to read; None reads all.
            Records of other tags are skipped without being decoded.

    Examples:
        >>> path = "run/train/events.out.tfevents.1"
        >>> points, hparams = read_file(path, "run", "train")  # doctest: +SKIP
    """
    table = _Tags(_matcher(tags))
    piece, hparams = _read_points(os.fspath(path), table)
    points = [
        Point(run, split, table.names[t], s, v, w)
        for t, s, v, w in zip(
            piece.tag.tolist(),
            piece.step.tolist(),
            piece.value.tolist(),
            piece.wall_time.tolist(),
            strict=True,
        )
    ]
    return points, hparams


#: One event file read: its wanted points (tag codes index the names), its tag names, its hparams.
FileRead = tuple[Piece, list[str], dict[str, Any]]


class FileCache(Protocol):
    """Event files read before, for ``read_table`` (``lossboard.reader.cache.FileCache``)."""

    def get(self, path: str, last: bool) -> FileRead | None:
        """What ``path`` held when read, if it has not changed since; else None."""

    def put(self, path: str, last: bool, found: FileRead) -> None:
        """Keeps what ``path`` holds now."""


def read_points(path: str, tags: Iterable[str] | str | None = None, last: bool = True) -> FileRead:
    """The wanted scalars of one event file as columns, its tag names and its hparams.

    Args:
        path: The event file.
        tags: Tag names or shell patterns to read; None reads all.
        last: Whether it is the newest event file of its folder: a record cut short at its
            end is then a writer at work, not damage (see ``records``).

    Examples:
        >>> piece, names, hparams = read_points("run/train/events.out.tfevents.1")  # doctest: +SKIP
        >>> names, piece.step.tolist()  # doctest: +SKIP
        (['epoch_loss'], [0, 1])
    """
    names = _Tags(_matcher(tags))
    piece, hparams = _read_points(os.fspath(path), names, last)
    return piece, names.names, hparams


def read_table(
    root: str | os.PathLike,
    *,
    tags: Iterable[str] | str | None = None,
    splits: Iterable[str] | str | None = None,
    cache: FileCache | None = None,
    listed: tuple[list[str], list[str]] | None = None,
) -> Table:
    """Every wanted scalar under ``root`` as columns (see ``read_root`` for the rules).

    ``cache`` keeps each file read and gives it back while the file is unchanged
    (``lossboard.reader.cache``: a dashboard's reloads read only the files that changed);
    ``listed``: ``(event_files(root, aggregated), aggregated)``, when the caller just walked.

    Examples:
        >>> table = read_table("logs", tags="epoch_*")  # doctest: +SKIP
        >>> table.tags  # doctest: +SKIP
        ['epoch_loss']
    """
    root = os.fspath(root)
    if not files.isdir(root):
        raise FileNotFoundError(
            f"{root!r} is not a directory; pass the folder that holds your runs "
            "(the parent of each run's train/ and validation/)."
        )
    split_wanted = _matcher(splits)
    names = _Tags(_matcher(tags))
    pieces: list[tuple[str, str, Piece]] = []
    codes: dict[tuple[str, ...], np.ndarray] = {}
    hparams: dict[str, dict[str, Any]] = {}
    if listed is None:
        aggregated: list[str] = []
        paths = list(event_files(root, aggregated))
    else:
        paths, aggregated = listed
    by_folder: dict[str, list[str]] = {}  # a folder's files are listed together, by name
    for path in paths:
        by_folder.setdefault(files.dirname(path), []).append(path)
    cwd = os.getcwd()
    parts = {folder: _parts(root, folder, cwd) for folder in by_folder}
    runs_with_splits = _split_parents(parts.values())  # a run named train is a run, not a split
    wanted = []
    for folder, in_folder in by_folder.items():
        run, split = _run_and_split(parts[folder], runs_with_splits)
        if not split or split_wanted(split):  # a run's own folder is read for its hparams
            wanted += [(path, run, split, path == in_folder[-1]) for path in in_folder]
    for first in range(0, len(wanted), _BATCH):
        chunk = wanted[first : first + _BATCH]
        stored = {p: cache.get(p, last) for p, _, _, last in chunk} if cache else {}
        done = _read_batch([p for p, _, _, _ in chunk if stored.get(p) is None], names)
        for path, run, split, last in chunk:
            found_read = stored.get(path)
            if found_read is not None:
                found = _recoded(found_read, names, codes)
            else:
                found = done.get(path) or _read_points(path, names, last)
                if cache is not None:
                    cache.put(path, last, (found[0], names.names, found[1]))
            piece, file_hparams = found
            if file_hparams:  # the newest set of the run wins whole (files come oldest first)
                hparams[run] = dict(file_hparams)
            if split_wanted(split):
                pieces.append((run, split, piece))
    table = table_.assemble(pieces, names.names, hparams)
    table.aggregated = aggregated
    return table


def _recoded(
    found: FileRead, names: _Tags, codes: dict[tuple[str, ...], np.ndarray]
) -> tuple[Piece, dict[str, Any]]:
    """A file's points read with other tag codes, with ``names``'s codes; ``codes`` keeps
    each list of tag names' codes (files of one root share a few such lists). Only the tags
    the file has are named: a tag of a file gone since is not listed."""
    piece, tags, file_hparams = found
    key = tuple(tags)
    mapped = codes.get(key)
    if mapped is None:
        mapped = codes[key] = np.full(len(tags), -2, np.int32)  # -2: not looked up yet
    if len(piece.tag):
        used = np.flatnonzero(np.bincount(piece.tag, minlength=len(tags)))
        for i in used[mapped[used] == -2].tolist():
            mapped[i] = names.code(tags[i])
    return Piece(mapped[piece.tag], piece.step, piece.value, piece.wall_time), file_hparams


def read_root(
    root: str | os.PathLike,
    *,
    tags: Iterable[str] | str | None = None,
    splits: Iterable[str] | str | None = None,
) -> tuple[list[Point], dict[str, dict[str, Any]]]:
    """Every scalar point under ``root`` and each run's hparams.

    Where a step of a tag was written more than once (a resumed run re-logging
    an epoch), only the newest value is kept.

    Args:
        root: The folder that holds the runs; a ``scheme://`` path is read
            through ``tf.io.gfile``.
        tags: Tag names or shell patterns to read (``"epoch_*"``); None reads all.
            Records of other tags are skipped without being decoded.
        splits: Splits to read (``"train"``, ``"validation"``; ``""`` for the
            run's own folder); None reads all.

    Raises:
        FileNotFoundError: When ``root`` is not a directory.

    Examples:
        >>> points, hparams = read_root("logs", tags="epoch_*")  # doctest: +SKIP
        >>> points[0]  # doctest: +SKIP
        Point(run='a', split='train', tag='epoch_loss', step=0, value=0.52, wall_time=...)
    """
    table = read_table(root, tags=tags, splits=splits)
    points = [
        Point(table.runs[r], table.splits[s], table.tags[t], step, value, wall_time)
        for r, s, t, step, value, wall_time in zip(
            table.run.tolist(),
            table.split.tolist(),
            table.tag.tolist(),
            table.step.tolist(),
            table.value.tolist(),
            table.wall_time.tolist(),
            strict=True,
        )
    ]
    return points, table.hparams


def load(
    root: str | os.PathLike,
    tags: Iterable[str] | str | None = None,
    splits: Iterable[str] | str | None = None,
) -> pd.DataFrame:
    """Every scalar under ``root`` as a pandas DataFrame, one row per point.

    Columns: ``run`` (the run's path relative to ``root``), ``split``
    (``train``/``validation``), ``tag``, ``step``, ``value``, ``wall_time``;
    ``run``, ``split`` and ``tag`` are categorical. Reads runs written by
    ``LossLogger`` and by ``keras.callbacks.TensorBoard``; the hparams of each
    run are in ``df.attrs["hparams"]``. ``tags`` and ``splits`` select as in
    ``read_root``. A corrupt or unreadable event file costs an
    ``EventFileWarning`` and the points after the damage, not an error.

    Args:
        root: The folder that holds the runs (or one run).
        tags: Tags or globs to keep, such as ``"epoch_*"`` (default: every tag).
        splits: Splits to keep, such as ``"validation"`` (default: every split).

    Returns:
        The points, sorted by run, split, tag and step; ``attrs["hparams"]`` maps each run
            to its hyperparameters.

    Examples:
        >>> import lossboard
        >>> with lossboard.LossLogger("logs/doc-load/run1") as logger:
        ...     for epoch, loss in enumerate([0.75, 0.5]):
        ...         logger.on_train_batch_end(0, {"loss": loss})
        ...         _ = logger.on_epoch_end(epoch)
        >>> df = lossboard.load("logs/doc-load", tags="epoch_*")
        >>> df[["run", "split", "tag", "step", "value"]].values.tolist()
        [['run1', 'train', 'epoch_loss', 0, 0.75], ['run1', 'train', 'epoch_loss', 1, 0.5]]
    """
    import pandas as pd

    table = read_table(root, tags=tags, splits=splits)
    columns: dict[str, Any] = {}
    for name, names in (("run", table.runs), ("split", table.splits), ("tag", table.tags)):
        codes = getattr(table, name)
        setattr(table, name, None)  # let the codes go once pandas has them
        columns[name] = pd.Categorical.from_codes(codes, categories=pd.Index(names, dtype=object))
    for name in ("step", "value", "wall_time"):
        columns[name] = getattr(table, name)
    frame = pd.DataFrame(columns, columns=COLUMNS, copy=False)
    frame.attrs["hparams"] = table.hparams
    return frame


def read_back(log_dir: str) -> tuple[set[int], int]:
    """Epochs already written to ``log_dir`` and the last batch-curve step (to resume).

    Reads local folders and any file system TensorFlow supports (``gs://``, ...);
    reads only ``epoch_*`` and ``batch_*`` tags.

    Examples:
        >>> read_back("no-such-run")
        (set(), 0)
    """
    log_dir = os.fspath(log_dir)
    if not files.isdir(log_dir):
        return set(), 0
    table = read_table(log_dir, tags=("epoch_*", "batch_*"))
    epoch = np.array([t.startswith(EPOCH_PREFIX) for t in table.tags], bool)
    is_epoch = epoch[table.tag] if len(table.tags) else np.zeros(0, bool)
    batch_steps = table.step[~is_epoch]
    return set(table.step[is_epoch].tolist()), int(batch_steps.max()) if batch_steps.size else 0
