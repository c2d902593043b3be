import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

BASE_GRID = """\
sweep: t
model: lstm
data:
  path: data/x.npz
params:
  batch_size: 150
axes:
  optimizer: [adam, sgd]
  topology:
    - [32, 64, 1]
    - [96, 128, 1]
"""


@pytest.fixture
def write_grid(tmp_path):
    """Write a grid file (dedented) into tmp_path and return its path."""

    def write(text: str, name: str = "grid.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write
