"""Profiles: traits with provenance (stated, observed, inferred), decay, and the one resolution rule."""

from shopkeeper.profiles.traits import (
    SOURCES,
    DecayPolicy,
    ResolvedTrait,
    TraitRecord,
    resolve,
)

__all__ = ["SOURCES", "DecayPolicy", "ResolvedTrait", "TraitRecord", "resolve"]
