"""Toy drift-chamber waveform simulator and the two training datasets (numpy/scipy only).

* :mod:`sweep.data.simulate` – :class:`SimulationParams`, :func:`simulate_batch`,
  :func:`simulate_to_file` (one compressed ``.npz`` per simulation).
* :mod:`sweep.data.datasets` – peak-finding windows, clusterization inputs, the file
  format, :func:`load_peak_dataset`, :func:`load_cluster_dataset`, :func:`read_meta`.

Nothing heavy is imported here; scipy and rich are imported lazily where needed.
"""

__all__ = ["simulate", "datasets"]
