"""sweep: HTCondor hyperparameter sweeps for the IDEA drift-chamber cluster-counting models.

The folders read like the pipeline (see docs/explanation/architecture.md):

* ``sweep.core``     – pure logic: grid parsing/validation, expansion, ids, rendering, ranking,
                       the error base, the shared names, the run states. Neither HTCondor nor
                       TensorFlow, nothing of sweep outside the core.
* ``sweep.records``  – what a sweep leaves on disk (manifest, run folders, event log), read by
                       several stages.
* ``sweep.submit``   – grid -> files on disk -> a backend (local executor, HTCondor pool); status.
* ``sweep.job``      – the execute-side process (where TensorFlow trains).
* ``sweep.collect``  – run folders -> leaderboard, exports, best models, reports.
* ``sweep.physics``  – the waveform simulator, datasets, readers, baselines, the chain evaluation.
* ``sweep.cli``      – argument parsing; delegates to the stages above.

This module imports nothing (every module of sweep imports it).
"""

__version__ = "0.1.0"
