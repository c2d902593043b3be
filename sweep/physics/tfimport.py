"""TensorFlow and Keras, imported the way every sweep process that trains or scores wants them.

Two things happen once, at the first import, in the job, the chain's steps and `sweep evaluate`:

* TensorFlow's C++ start-up lines (absl, oneDNN, cpu_feature_guard), which it writes to file
  descriptor 2 whatever TF_CPP_MIN_LOG_LEVEL says, are dropped; anything else printed while
  importing still shows.
* pandas, scikit-learn, matplotlib, IPython and SciPy are not imported along. TensorFlow and Keras
  import each of them inside a try/except ImportError, only for what sweep never asks of them: a
  DataFrame or a SciPy sparse matrix as input (Keras, TF's legacy tf.keras), Keras's scikit-learn
  wrappers, its image-gallery plots (matplotlib.pyplot, with pyparsing, dateutil, PIL) and its
  notebook display (IPython). Together they cost about 2 s of CPU of the ~5 s an import takes
  (pandas and scikit-learn 1.2 s; matplotlib and IPython 0.6 s; SciPy 0.15 s, measured on the
  demo grid's job, issue 27's fixed cost), per job and per training process of the test suite.
  They are hidden from the import and put back at once, so a later `import pandas` or
  `import matplotlib.pyplot` in the same process works as usual (Keras then treats DataFrames as
  unknown inputs, which it was never given, and its own plotting helpers stay off).

Standard library only at import time; TensorFlow is imported inside the functions.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import Any

#: What TensorFlow's C++ side prints to fd 2 while it is imported, whatever TF_CPP_MIN_LOG_LEVEL
#: says (absl logs before its logging is initialised): start-up facts, not sweep's to show.
TF_START_UP_NOISE = ("All log messages before absl::InitializeLog()", "oneDNN custom operations are on",
                     "cpu_feature_guard", "rebuild TensorFlow with the appropriate compiler flags",
                     "To enable the following instructions", "Unable to register cu", "computation placer",
                     "TF-TRT Warning", "Could not find cuda drivers", "cuda_executor", "cuda_dnn", "cuda_fft",
                     "cuda_blas")

#: Imported by TensorFlow and Keras, each behind a try/except ImportError, only for what sweep never
#: uses (see the module's text). Not requests, h5py, psutil or rich: some of TensorFlow's or Keras's
#: imports of those are unguarded, or Keras uses them (h5py for its weights, psutil when it saves).
NOT_WITH_TENSORFLOW = ("pandas", "sklearn", "matplotlib", "IPython", "scipy")


@contextlib.contextmanager
def _stderr_without(noise: tuple[str, ...]):
    """Catch what is written to file descriptor 2 (C++ included) while the block runs, then pass
    on every line that holds none of `noise`."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            kept = [line for line in caught.read().decode("utf-8", "replace").splitlines(keepends=True)
                    if not any(n in line for n in noise)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


@contextlib.contextmanager
def _without(names: tuple[str, ...]):
    """`import NAME` raises ImportError inside the block for every NAME not imported yet (a None in
    sys.modules is Python's way of saying "not available"); afterwards they can be imported again."""
    hidden = [name for name in names if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


def _import(name: str) -> Any:
    if name not in sys.modules:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        with _stderr_without(TF_START_UP_NOISE), _without(NOT_WITH_TENSORFLOW):
            __import__(name)
    return sys.modules[name]


def import_tensorflow() -> Any:
    """The tensorflow module, imported quietly and without NOT_WITH_TENSORFLOW (see above)."""
    return _import("tensorflow")


def import_keras() -> Any:
    """The keras module (TensorFlow's backend with it), imported like import_tensorflow."""
    return _import("keras")
