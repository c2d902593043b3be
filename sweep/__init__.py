"""sweep: HTCondor hyperparameter sweeps for the IDEA drift-chamber cluster-counting models.

The package is split so that the architecture shows in the folders:

* ``sweep.core``     – pure logic: grid parsing/validation, expansion, ids, rendering, ranking.
                       Needs neither HTCondor nor TensorFlow.
* ``sweep.backends`` – thin adapters that run rendered jobs (local executor, HTCondor pool).
* ``sweep.job``      – the execute-side process (the only place TensorFlow is imported).
* ``sweep.data``     – the waveform simulator and dataset loaders (numpy only).
* ``sweep.cli``      – argument parsing; delegates to the modules above.
"""

__version__ = "0.1.0"
