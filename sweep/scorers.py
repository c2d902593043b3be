"""A trained model as a plain function ``f(X) -> scores``, for the simulator and the evaluation.

Both the dataset builder (clusterization inputs from a peak finder) and :mod:`sweep.evaluate`
score arrays with a model that may be a .keras file, a Keras model or any callable; keeping the
conversion here lets the data layer use it without depending on the evaluation. TensorFlow is
imported only for a model *file*.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

Scorer = Callable[[np.ndarray], np.ndarray]


def load_model_fn(model: Any, batch_size: int = 8192) -> Scorer | None:
    """None → None; a callable → itself; a path (.keras) → ``X -> model.predict(X).ravel()``."""
    if model is None:
        return None
    if callable(model) and not isinstance(model, (str, Path)):
        if hasattr(model, "predict"):  # a Keras model object
            return lambda X: np.asarray(model.predict(X, batch_size=batch_size, verbose=0)).ravel()
        return model
    path = Path(model)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    import keras  # TensorFlow only here

    m = keras.saving.load_model(path, compile=False)
    return lambda X: np.asarray(m.predict(X, batch_size=batch_size, verbose=0)).ravel()
