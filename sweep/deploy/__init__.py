"""Exported models used without TensorFlow (numpy and ONNX Runtime only), as key4hep uses them:
:func:`load` an export of `sweep export onnx`, then :meth:`PeakFinder.peaks` and
:meth:`Clusterizer.counts` (sweep.deploy.consumer)."""

from .consumer import Clusterizer, PeakFinder, load

__all__ = ["Clusterizer", "PeakFinder", "load"]
