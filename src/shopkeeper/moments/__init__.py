"""Moments: wishes, triggers, respect (consent, budget, quiet hours, dedupe) and the suppression ledger."""
