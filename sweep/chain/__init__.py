"""The two-step chain (peak finder -> its peaks -> clusterizer -> evaluation) as one pipeline:
its stages (stages) and `sweep chain` (run)."""
