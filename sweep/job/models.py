"""Keras models of the two reconstruction steps (imported only in the job process)."""

from __future__ import annotations

from typing import Any


def build_lstm(params: dict[str, Any], window: int = 15):
    """The seed study's peak finder, layer for layer:

    LSTM(units[0]) → Flatten → Dense(units[1], act[0]) → Dropout → Dense(units[2], act[1])
    → Dropout → Dense(1, sigmoid). [96, 128, 1] has 50,179 parameters, [32, 64, 1] 6,531.
    """
    import keras
    from keras import layers

    units, acts, drops = params["topology"], params["activations"], params["dropout"]
    return keras.Sequential([
        keras.Input(shape=(window, 1)),
        layers.LSTM(units[0]),
        layers.Flatten(),
        layers.Dense(units[1], activation=acts[0]),
        layers.Dropout(drops[0]),
        layers.Dense(units[2], activation=acts[1]),
        layers.Dropout(drops[1]),
        layers.Dense(1, activation="sigmoid"),
    ], name="lstm_peak_finder")


def build_cnn(params: dict[str, Any], length: int = 1024):
    """Clusterizer: [Conv1D × convs_per_block → MaxPool1D] per block → Flatten or
    GlobalAveragePooling1D → Dense(+Dropout)… → Dense(1).

    ``head: global_average`` averages each feature over the window: the number of clusters is a
    sum of local contributions, and this head learns it from fewer samples than ``flatten``,
    which gives every position its own weights (the seed's design, the default)."""
    import keras
    from keras import layers

    model = keras.Sequential([keras.Input(shape=(length, 1))], name="cnn_clusterizer")
    for filters, kernel in zip(params["filters"], params["kernel_sizes"], strict=True):
        for _ in range(params.get("convs_per_block", 1)):
            model.add(layers.Conv1D(filters, kernel, padding="same", activation=params["activation"]))
        if params["pool_size"] > 1:
            model.add(layers.MaxPooling1D(params["pool_size"]))
    model.add(layers.GlobalAveragePooling1D() if params.get("head") == "global_average" else layers.Flatten())
    for units in params["dense_units"]:
        model.add(layers.Dense(units, activation=params["activation"]))
        model.add(layers.Dropout(params["dropout"]))
    model.add(layers.Dense(1))
    return model


def build(model: str, params: dict[str, Any]):
    """The Keras model of a run: the LSTM peak finder for model "lstm", else the CNN clusterizer."""
    return build_lstm(params) if model == "lstm" else build_cnn(params)


def make_optimizer(name: str, learning_rate: float | None):
    """The Keras optimizer of that name (keras.optimizers.get: a ValueError for an unknown one), with
    `learning_rate` when given, else its default."""
    import keras

    optimizer = keras.optimizers.get(name)
    if learning_rate is not None:
        optimizer.learning_rate = learning_rate
    return optimizer
