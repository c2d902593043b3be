"""A job's fixed cost (issue 27): what the job leaves out of its TensorFlow import, and the
prediction batch that must not change any score. No timing here (bench/bench_job_cost.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.training
def test_tensorflow_is_imported_without_its_optional_extras_which_import_later_as_usual():
    # a fresh process: the test session may have imported any of them already
    code = (
        "import importlib.util, sys\n"
        "import sweep.physics.tfimport as t\n"
        "t.import_tensorflow(); t.import_keras()\n"
        "along = [m for m in t.NOT_WITH_TENSORFLOW if m in sys.modules]\n"
        "assert not along, f'imported along with TensorFlow: {along}'\n"
        "for name in ('pandas', 'sklearn.metrics', 'matplotlib.pyplot', 'IPython', 'scipy.sparse'):\n"
        "    if importlib.util.find_spec(name.split('.')[0]) is not None:\n"
        "        __import__(name)  # hidden only while TensorFlow was imported\n"
        "print('ok')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


@pytest.mark.training
def test_the_prediction_batch_does_not_change_a_score():
    """training.PREDICT_BATCH was chosen for speed only: the peak finder's scores are the same numbers
    at any batch size (to float32's last digits), so the test and natural_* metrics do not depend on it."""
    import keras

    from sweep.job.models import build_lstm
    from sweep.job.training import PREDICT_BATCH

    keras.utils.set_random_seed(3)
    model = build_lstm({"topology": [96, 128, 1], "activations": ["relu", "sigmoid"], "dropout": [0.1, 0.1]})
    x = np.random.default_rng(1).normal(size=(2 * PREDICT_BATCH + 77, 15, 1)).astype(np.float32)
    at_batch = model.predict(x, batch_size=PREDICT_BATCH, verbose=0)
    for other in (256, 8192):
        # bit-identical on this project's machines; another CPU's kernels may round a last bit
        # differently by batch, which no threshold of a score notices
        np.testing.assert_allclose(model.predict(x, batch_size=other, verbose=0), at_batch, rtol=0, atol=1e-6)
