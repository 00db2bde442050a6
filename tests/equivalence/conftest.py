"""Everything in tests/equivalence compares against DoWhy: marked `dowhy`."""

from __future__ import annotations

import pathlib

import pytest

_HERE = pathlib.Path(__file__).parent


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    for item in items:
        if _HERE in pathlib.Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.dowhy)


@pytest.fixture(autouse=True, scope="session")
def _quiet_dowhy() -> None:
    # DoWhy's tqdm bars are global config; tests do not need them on stderr.
    from dowhy.gcm import config

    config.disable_progress_bars()
