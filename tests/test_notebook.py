"""notebooks/quickstart.ipynb is committed with its outputs (its plot shows when the file is
browsed), free of TensorFlow's log noise, and still runs top to bottom.

To refresh the committed outputs after editing the notebook::

    python tests/test_notebook.py
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"
NOISE = ("cuda", "onednn", "cpu_feature_guard", "absl", "tensorflow/core", "i0000", "w0000")
TABLE_HEADER = "epoch_loss: 2 run(s), best first"


def execute(notebook: Path, cwd: Path):
    """Runs the notebook in ``cwd`` with TensorFlow's C++ log level at errors only."""
    nb = nbformat.read(notebook, as_version=4)
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"  # the kernel inherits it
    NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        coalesce_streams=True,
        resources={"metadata": {"path": str(cwd)}},
    ).execute()
    return nb


def text_of(nb) -> str:
    return "\n".join(
        out.get("text", "") + str(out.get("data", {}).get("text/plain", ""))
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
    )


def images(nb) -> list:
    return [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if "image/png" in out.get("data", {})
    ]


def test_committed_with_outputs_and_no_log_noise():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code), "run it: python " + __file__
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1)), "in order"
    assert not any(out.get("name") == "stderr" for cell in code for out in cell.outputs)
    text = text_of(nb)
    for word in NOISE:
        assert word not in text.lower(), f"TensorFlow log noise in the outputs: {word!r}"
    assert TABLE_HEADER in text and "Epoch 5:" in text
    assert len(images(nb)) == 1  # the plot, shown when the notebook is browsed
    assert NOTEBOOK.stat().st_size < 400_000


def test_runs_top_to_bottom(tmp_path):
    shutil.copy(NOTEBOOK, tmp_path)
    nb = execute(tmp_path / NOTEBOOK.name, tmp_path)
    text = text_of(nb)
    assert TABLE_HEADER in text
    assert "Epoch 5:" in text  # verbose=1 lines
    committed = text_of(nbformat.read(NOTEBOOK, as_version=4))

    def columns(output: str) -> str:  # the line under the table's title
        lines = output.splitlines()
        return lines[lines.index(TABLE_HEADER) + 1]

    assert columns(text) == columns(committed)  # the same compare table, column for column
    assert len(images(nb)) == 1
    runs = list((tmp_path / "logs").glob("*-notebook/lr_0.03/validation"))
    assert len(runs) == 1 and runs[0].is_dir()  # a fresh, timestamped folder per run


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        executed = execute(NOTEBOOK, Path(tmp))
    for cell in executed.cells:
        cell.metadata.pop("execution", None)  # timestamps: noise in every diff
    nbformat.write(executed, NOTEBOOK)
    print(f"wrote {NOTEBOOK} with its outputs ({NOTEBOOK.stat().st_size} bytes)", file=sys.stderr)
