"""The event-file layout of Keras' ``TensorBoard`` callback, which lossboard writes and reads.

A run is a directory with one sub-directory per split, ``train`` and
``validation``; epoch values are written under ``epoch_<name>`` at step =
epoch, batch curves under ``batch_<name>`` at step = global batch. Keras'
History names validation values ``val_<name>``. Nothing here imports
TensorFlow: the reader and the command line use it too.
"""

from __future__ import annotations

TRAIN = "train"
VALIDATION = "validation"
SPLITS = (TRAIN, VALIDATION)

#: History keys of validation values start with this (``val_loss``).
VAL_PREFIX = "val_"
EPOCH_PREFIX = "epoch_"
BATCH_PREFIX = "batch_"
#: The file ``lossboard aggregate`` leaves in its output folder; runs under it are not sources.
AGGREGATE_MARKER = ".lossboard-aggregate.json"


def epoch_tag(name: str) -> str:
    """The tag of a component's epoch values: ``loss`` -> ``epoch_loss``."""
    return EPOCH_PREFIX + name


def batch_tag(name: str) -> str:
    """The tag of a component's batch curve: ``loss`` -> ``batch_loss``."""
    return BATCH_PREFIX + name


def history_key(split: str, name: str) -> str:
    """A component's key in Keras' History: ``val_loss`` for validation's ``loss``."""
    return VAL_PREFIX + name if split == VALIDATION else name


def split_of(key: str) -> tuple[str, str]:
    """The split and component name of a History key: ``val_kl`` -> ``("validation", "kl")``."""
    if key.startswith(VAL_PREFIX):
        return VALIDATION, key[len(VAL_PREFIX) :]
    return TRAIN, key


def epoch_tags_by_split(history: dict[str, float]) -> dict[str, dict[str, float]]:
    """History values as ``{split: {epoch_tag: value}}``, ready to write."""
    out: dict[str, dict[str, float]] = {TRAIN: {}, VALIDATION: {}}
    for key, value in history.items():
        split, name = split_of(key)
        out[split][epoch_tag(name)] = value
    return out
