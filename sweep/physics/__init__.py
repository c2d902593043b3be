"""Classical reconstruction baselines: the DERIV peak finder and the √t clusterization."""
