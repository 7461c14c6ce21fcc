"""Experiments: assignment, the holdout, lift statistics, verdicts, bandits and off-policy evaluation.

The modules here are the pure numeric core: arrays and numbers in, numbers out. They never import the
store or the web layer.
"""
