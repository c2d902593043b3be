"""The execute-side job: `python -m sweep.job config.yaml` trains one configuration.

This is the only part of sweep that imports TensorFlow, and only inside the job process
(runner.main configures TensorFlow's threads before the first import).
"""
