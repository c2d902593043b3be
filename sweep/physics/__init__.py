"""The physics beside the pipeline: the toy drift-chamber simulator, the two training datasets,
readers of real waveform files, the classical baselines and the evaluation of the two-step chain.
numpy only at import time; scipy, rich and TensorFlow (for a model *file*) where they are needed.

simulate.py    SimulationParams and simulate_batch: tracks, clusters, electrons, waveforms
datasets.py    peak windows and clusterization inputs, the dataset file format, loaders,
               simulate_to_file (what `sweep data simulate` does)
readers.py     waveforms + truth from npz, HDF5 and ROOT (CEPC layout) files
deriv.py       the classical DERIV peak finder, its threshold scan
clusterize.py  the √t clusterization of peak times
scorers.py     a trained model (a .keras file) as a function X -> scores
evaluate.py    peak, cluster, track level and π/K separation on held-out waveforms
datastep.py    a sweep's data step: check simulation parameters, make a missing dataset
"""
