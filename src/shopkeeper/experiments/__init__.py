"""Experiments: assignment, the holdout, lift statistics, verdicts, bandits and off-policy evaluation.

The numeric core (`assign`, `stats`, `sequential`, `power`, `verdict`, `analysis`, `bandit`, `ope`) is pure:
arrays and numbers in, numbers out; it never imports the store or the web layer (a test checks this). The
service and the reports build on it; experiments are kept in the database by `shopkeeper.store.experiments`.

The defaults of a new experiment live here, light to import (the CLI's --help shows them).
"""

DEFAULT_WINDOW_DAYS = 14  # days after a person's first exposure that their outcomes count
DEFAULT_FLOOR = 0.05  # the least chance a bandit keeps giving every arm
# The universal cohorts a decision falls in (logged with it).
HOLDOUT, PERSONALIZED, NO_CONSENT = "holdout", "personalized", "no_consent"
