"""Model files come back from execute nodes: sweep loads only .keras archives, always in Keras'
safe mode, and only with a Keras release that fixed every published safe_mode bypass."""

from __future__ import annotations

import pytest

from sweep.physics import scorers


@pytest.mark.parametrize("name", ["model.h5", "model.hdf5", "model", "model.keras.h5", "saved_model.pb"])
def test_a_model_file_other_than_keras_is_refused_before_keras_reads_it(tmp_path, name):
    """HDF5 models ignore safe_mode (CVE-2025-9905), SavedModels run graph code: neither is read."""
    path = tmp_path / name
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    with pytest.raises(scorers.ModelError) as exc:
        scorers.load_model_fn(path)
    assert str(path) in str(exc.value)
    assert "only .keras model files are loaded" in str(exc.value)


@pytest.mark.parametrize("version", ["3.0.0", "3.8.0", "3.10.0", "3.11.3", "3.12.0", "3.13.0", "3.13.1",
                                     "3.13.2rc1"])
def test_a_keras_with_a_known_safe_mode_bypass_is_refused(version):
    with pytest.raises(scorers.ModelError) as exc:
        scorers.check_keras_version(version)
    text = str(exc.value)
    assert f"Keras {version}" in text and "3.13.2" in text and "safe_mode" in text


@pytest.mark.parametrize("version", ["3.13.2", "3.14.0", "3.15.1", "4.0.0"])
def test_a_keras_without_known_bypasses_is_accepted(version):
    scorers.check_keras_version(version)


def test_the_installed_keras_and_the_requirement_agree():
    """pyproject's floor, the job's environment check and the loader's check name one version."""
    import importlib.metadata
    import re
    from pathlib import Path

    from sweep.job import envcheck

    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    floor = re.search(r'"keras>=([0-9.]+)"', text)
    assert floor is not None
    wanted = tuple(int(p) for p in floor.group(1).split("."))
    assert wanted == scorers.KERAS_SAFE_MODE_FIXED == envcheck.REQUIRED["keras"][1]
    scorers.check_keras_version(importlib.metadata.version("keras"))
