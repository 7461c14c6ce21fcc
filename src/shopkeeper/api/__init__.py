"""The HTTP API: Segment's tracking endpoints and the shop's own, built by `create_app(settings)`."""

from shopkeeper.api.app import create_app

__all__ = ["create_app"]
