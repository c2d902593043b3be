"""The execute-side job: `python -m sweep.job config.yaml` trains one configuration.

It needs only the core, fsutil and the dataset loaders of sweep.physics; TensorFlow is imported
inside the job process only (runner.main configures TensorFlow's threads before the first import).
"""
