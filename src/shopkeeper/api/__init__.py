"""The HTTP API: Segment's tracking endpoints and the shop's own, built by `create_app(settings)`."""

from starlette.convertors import PathConvertor, register_url_convertor


class IdConvertor(PathConvertor):
    """`{name:id}` in a route: an id of any characters, "/" and newlines included (`path`'s `.*` stops at
    a newline, so an id holding one answered 404 "no route" instead of reaching its route)."""

    regex = "(?s:.*)"


register_url_convertor("id", IdConvertor())  # before the routes are declared, below

from shopkeeper.api.app import create_app  # noqa: E402

__all__ = ["create_app"]
