"""Profiles: traits with provenance (stated, observed, inferred), decay, and the one resolution rule."""

from shopkeeper.profiles.traits import SOURCES, DecayPolicy, ResolvedTrait, resolve
from shopkeeper.store.traits import TraitRecord

__all__ = ["SOURCES", "DecayPolicy", "ResolvedTrait", "TraitRecord", "resolve"]
