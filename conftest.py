"""Root pytest configuration: docstring examples run in a fresh temporary directory."""

import pytest
from _pytest.doctest import DoctestItem


@pytest.fixture(autouse=True)
def _doctests_in_tmp_path(request, tmp_path, monkeypatch):
    if isinstance(request.node, DoctestItem):
        monkeypatch.chdir(tmp_path)
