"""Experiments: assignment, the holdout, lift statistics, verdicts, bandits and off-policy evaluation.

The numeric core (`assign`, `stats`, `sequential`, `power`, `verdict`, `analysis`, `bandit`, `ope`) is pure:
arrays and numbers in, numbers out; it never imports the store or the web layer (a test checks this). The
service and the reports build on it; experiments are kept in the database by `shopkeeper.store.experiments`.
"""
