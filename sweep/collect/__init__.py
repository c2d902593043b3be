"""The collect stage: a sweep's run folders and event log -> a ranked leaderboard, exports, the
best models, and the text and HTML reports.

gather.py       read every run (records) -> Leaderboard, resource use, right-sizing advice
leaderboard.py  rank by any column, filter, aggregate repeats, export, copy the best models
sensitivity.py  per-value marginals and Optuna's fANOVA importance of the hyperparameters
report_text.py  the terminal's resources table
report_html.py  the self-contained HTML report
tracking.py     the ranked runs for TensorBoard (logs) and MLflow (a store), from the run folders
export.py       which models `sweep export onnx` exports, and where
stage.py        what `sweep collect` does (the CLI only parses its arguments)
"""
