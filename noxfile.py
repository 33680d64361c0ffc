"""Compatibility sessions: the supported range of Python, TensorFlow and Keras, proven by the tests.

    nox -s oldest            # Python 3.10, TensorFlow 2.16.2, Keras 3.3.3: the whole suite
    nox -s newest            # Python 3.12 and 3.13, the newest TensorFlow / Keras 3 tested
    nox -s legacy            # TensorFlow's legacy Keras 2: tf_keras with TF_USE_LEGACY_KERAS=1
    nox -s oldest -- core    # only the core tests (what CI runs); any other words go to pytest

Each session installs the project with its test extras plus the pins below into its own virtualenv
(add ``-r`` to reuse it on the next run) and prints the versions it resolved before the tests.
docs/install.md holds the table of versions these sessions ran and passed.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import nox

nox.options.sessions = ["oldest", "newest", "legacy"]
nox.options.error_on_missing_interpreters = True

# The oldest supported stack: TensorFlow 2.16 with the Keras 3 it shipped with, the TensorBoard
# of the same release, the NumPy 1.x it requires, and the oldest pandas setup.cfg allows.
OLDEST = [
    "tensorflow==2.16.2",
    "keras==3.3.3",
    "tensorboard==2.16.2",
    "numpy==1.26.4",
    "pandas==1.5.3",
    "setuptools<81",  # TensorBoard 2.16 imports pkg_resources, which setuptools 81 removed
]
# The newest stack tested (bump these when TensorFlow or Keras ships a release).
NEWEST = ["tensorflow==2.21.0", "keras==3.15.1", "tensorboard==2.21.0"]
# Legacy Keras 2: tf.keras is tf_keras when TF_USE_LEGACY_KERAS=1; its version follows TensorFlow's.
LEGACY = ["tensorflow==2.21.0", "tf_keras==2.21.0", "tensorboard==2.21.0"]

# The behaviour every stack must keep: the logger, model.fit, the reader, the mean and batch paths.
CORE = [
    "tests/test_logger.py",
    "tests/test_logger_loops.py",
    "tests/test_fit.py",
    "tests/test_keras_caller.py",
    "tests/test_legacy_keras.py",
    "tests/test_imports.py",
    "tests/test_reader.py",
    "tests/test_component_mean.py",
    "tests/test_inputs.py",
    "tests/test_tf_private.py",  # TensorFlow's private API moves between releases
    "tests/test_pending.py",
    "tests/test_accumulator.py",
    # the TensorBoard plugin: TensorBoard's plugin API and its frontend host change between
    # releases (2.16 to 2.21), so its server and browser tests run on every stack
    "tests/test_plugin.py",
    "tests/test_dashboard_browser.py",
    "tests/test_payload.py",
    "tests/test_query.py",
    "tests/test_cache.py",
]

VERSIONS = """
import sys
from importlib import metadata
import tensorflow as tf
names = ["tensorflow", "keras", "tf_keras", "tensorboard", "numpy", "pandas", "setuptools"]
found = {n: metadata.version(n) for n in names if list(metadata.distributions(name=n))}
print("python " + sys.version.split()[0], *(f"{n} {v}" for n, v in found.items()), sep=" | ")
print("tf.keras is", tf.keras.__name__)
"""


def _let_pyenv_offer_every_python() -> None:
    """With pyenv, ``python3.10`` is on PATH only if PYENV_VERSION names it: name them all."""
    pyenv = shutil.which("pyenv")
    if pyenv is None or "PYENV_VERSION" in os.environ:
        return
    listed = subprocess.run([pyenv, "versions", "--bare"], capture_output=True, text=True)
    current = subprocess.run([pyenv, "version-name"], capture_output=True, text=True)
    names = [current.stdout.strip(), *listed.stdout.split()]
    os.environ["PYENV_VERSION"] = ":".join(dict.fromkeys(n for n in names if n))


_let_pyenv_offer_every_python()


def _test(session: nox.Session, pins: list[str], env: dict[str, str] | None = None) -> None:
    session.install("-e", ".[test]", *pins)
    session.run("python", "-c", VERSIONS, env=env)
    args = session.posargs
    if args[:1] == ["core"]:
        args = [*CORE, *args[1:]]
    session.run("python", "-m", "pytest", *args, env=env)


@nox.session(python="3.10")
def oldest(session: nox.Session) -> None:
    """The oldest supported stack: Python 3.10, TensorFlow 2.16.2, Keras 3.3.3."""
    _test(session, OLDEST)


@nox.session(python=["3.12", "3.13"])
def newest(session: nox.Session) -> None:
    """The newest stack tested: Python 3.12 and 3.13, TensorFlow 2.21, Keras 3.15."""
    _test(session, NEWEST)


@nox.session(python="3.11")
def legacy(session: nox.Session) -> None:
    """tf.keras as Keras 2 (tf_keras, TF_USE_LEGACY_KERAS=1) beside TensorFlow 2.21."""
    _test(session, LEGACY, env={"TF_USE_LEGACY_KERAS": "1"})
