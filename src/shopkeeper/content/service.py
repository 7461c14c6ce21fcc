"""Templates kept by the shop, and messages made from them for real people: the one way shopkeeper turns a
person into words.

A field's value comes from the person's resolved profile (stated > observed > inferred, decay applied), from
the moment that triggered the message, or from the caller (`item`, `items`; decide's picks with their
reasons when the template shows `items` and none were given, so an email's picks are the web's picks).
Consent and provenance are checked at the point of use: an observed or inferred value is used only when
the person agreed to the channel's purpose, and a guessed value that touches a sensitive category never
reaches copy. Every value then passes its slot's check (`shopkeeper.content.slots`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from shopkeeper.content.email import inline_css, text_from_html
from shopkeeper.content.hostile import HOSTILE_PROFILES
from shopkeeper.content.render import FieldUse, Rendered, Value, render
from shopkeeper.content.sensitive import Sensitive
from shopkeeper.content.template import Template, lint, parse_template
from shopkeeper.errors import InvalidInput, LintFailed, NotFound
from shopkeeper.store.templates import StoredTemplate

if TYPE_CHECKING:
    from shopkeeper.privacy.consent import Purposes
    from shopkeeper.profiles.service import ProfileService
    from shopkeeper.store import Store

CHANNEL_PURPOSE = {"email": "email_marketing", "web": "personalization", "staff": "staff_outreach"}
# A Segment reserved trait and the preference centre's name for it are one thing: the stronger source wins.
SAME_TRAIT = {
    "firstName": ("firstName", "first_name"),
    "first_name": ("first_name", "firstName"),
    "lastName": ("lastName", "last_name"),
    "last_name": ("last_name", "lastName"),
}
RANK = {"inferred": 0, "observed": 1, "stated": 2}
NAME_PATTERN = r"^[a-z0-9][a-z0-9_\-]{0,63}$"
MAX_PREVIEW_PEOPLE = 50
PRICE_CACHE_SECONDS = 5.0  # a catalog price is a plausibility bound: read again after this
# decide's picks for (person or None for a first-time visitor, placement, n, logged as an exposure?):
# items, each {"item_id", "title", "reason", "category", "price", "currency", ...}.
Picker = Callable[[str | None, str, int, bool], list[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Prepared:
    """A saved template's version, read and linted once: what a batch of messages is rendered from (each
    records this version)."""

    name: str
    version: int
    template: Template


@dataclass(frozen=True, slots=True)
class Message:
    """One person's message from one template version, or why it was not produced (`aborted`)."""

    template: str | None
    version: int | None
    person: str
    variant: str | None
    subject: str | None
    preheader: str | None
    html: str | None
    text: str | None
    fields: list[FieldUse]
    aborted: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "person": self.person,
            "template": self.template,
            "version": self.version,
            "variant": self.variant,
            "subject": self.subject,
            "preheader": self.preheader,
            "html": self.html,
            "text": self.text,
            "fields": [f.to_json() for f in self.fields],
            "aborted": self.aborted,
        }


class ContentService:
    """Saves, lints, lists and renders templates. `pick(user_id, placement, n)` gives decide's picks."""

    def __init__(
        self,
        store: Store,
        profiles: ProfileService,
        purposes: Purposes,
        *,
        sensitive: Sensitive | None = None,
        pick: Picker | None = None,
        link: Callable[[tuple[int, int] | None], str] | None = None,
        shop_name: str = "",
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._store = store
        self._profiles = profiles
        self._purposes = purposes
        self.sensitive = sensitive or Sensitive()
        self._pick = pick
        # the person's preference-centre link, from (person id, generation); None: the page, for previews
        self._link = link
        self._shop_name = shop_name
        self._checked: dict[tuple[str, int], Template] = {}
        self._prices: dict[
            str, tuple[float, float | None]
        ] = {}  # item id -> (read at, catalog price)  # saved versions linted by this process
        self._now = now or (lambda: datetime.now(UTC))

    # ---- templates ------------------------------------------------------------------------------

    def check(self, raw: Any) -> Template:
        """The template `raw` describes, linted: raises InvalidInput for a malformed one and LintFailed
        (422, each finding with its line, column, code and message) when lint finds anything."""
        template = parse_template(raw)
        findings = lint(template, sensitive=self.sensitive)
        if findings:
            raise LintFailed(
                f"the template has {len(findings)} lint finding(s); fix them and save again",
                [f.to_json() for f in findings],
            )
        return template

    def save(self, name: str, raw: Any, *, by: str) -> StoredTemplate:
        """Lint and store `raw` as the next version of `name`."""
        _check_name(name)
        template = self.check(raw)
        return self._store.templates.save(name, template.channel, raw, by=by)

    def get(self, name: str, version: int | None = None) -> StoredTemplate:
        _check_name(name)
        return self._store.templates.get(name, version)

    def latest(self) -> list[StoredTemplate]:
        """Every template, at its latest version."""
        return self._store.templates.latest()

    def load(self, folder: Path, *, by: str = "files") -> list[StoredTemplate]:
        """Save every `*.json` template in `folder` (named by its file name); all are checked first, and
        none is saved when any fails."""
        if not folder.is_dir():
            raise InvalidInput(f"{folder} is not a folder", field="DIR")
        files = sorted(folder.glob("*.json"))
        if not files:
            raise InvalidInput(f"{folder} has no *.json templates", field="DIR")
        parsed = []
        for path in files:
            raw = read_template_file(path)
            try:
                _check_name(path.stem)
                self.check(raw)
            except (InvalidInput, LintFailed) as exc:
                exc.message = f"{path.name}: {exc.message}"
                raise
            parsed.append((path.stem, raw))
        return [self.save(name, raw, by=by) for name, raw in parsed]

    # ---- messages -------------------------------------------------------------------------------

    def render(
        self,
        template: str | Prepared | Template | Mapping[str, Any],
        person: str,
        context: Mapping[str, Any] | None = None,
        *,
        variant: str | None = None,
        count: bool = True,
    ) -> Message:
        """`template` (a saved name, or a template) for the person known by `person`. `context`: the
        caller's `item`, `items` and `moment`. An abort is counted per template version and reason
        (`count=False` for previews). Raises NotFound for an unknown person or template."""
        name, version, parsed = self._resolve(template)
        values, locale, currency, linked = self._values(parsed, person)
        values.update(self._shop_values(parsed, linked if count else None))  # a preview signs no link
        given = dict(context or {})
        if isinstance(given.get("item"), Mapping):
            given["item"] = self._with_catalog_price(given["item"])
        if "items" in parsed.provided_names() and "items" not in given and self._pick is not None:
            given["items"] = self._picks(person, parsed.channel, exposure=count)
        message = self._finish(name, version, person, variant, parsed, values, given, locale, currency)
        if count and message.aborted is not None and name is not None and version is not None:
            # a reason names the field and the rule, never a value
            self._store.templates.count_aborts(name, version, {message.aborted: 1})
        return message

    def preview(
        self,
        template: str | Prepared | Template | Mapping[str, Any],
        people: Sequence[str] = (),
        *,
        hostile: bool = False,
        context: Mapping[str, Any] | None = None,
    ) -> list[Message]:
        """The template for real people (by id) and, with `hostile`, for the built-in hostile profiles:
        each part rendered, each field's value, source and fallback, and any abort with its reason."""
        if len(people) > MAX_PREVIEW_PEOPLE:
            raise InvalidInput(f"preview at most {MAX_PREVIEW_PEOPLE} people at once", field="people")
        name, version, parsed = self._resolve(template)
        one = parsed if name is None or version is None else Prepared(name, version, parsed)
        previews = [self.render(one, p, context, count=False) for p in people]
        if hostile:
            given = dict(context or {})
            if parsed.provided_names() & {"item", "items"} and self._pick is not None:
                picks = self._picks(None, parsed.channel, exposure=False)
                given.setdefault("items", picks)
                if picks:
                    given.setdefault("item", picks[0])
            for profile in HOSTILE_PROFILES:
                values = {key: Value(value, "stated") for key, value in profile.traits.items()}
                values.update(self._shop_values(parsed, None))
                label = f"hostile: {profile.label}"
                previews.append(self._finish(name, version, label, None, parsed, values, given, "en", "GBP"))
        return previews

    def aborts(self, name: str) -> list[dict[str, Any]]:
        _check_name(name)
        return self._store.templates.aborts(name)

    # ---- inside ---------------------------------------------------------------------------------

    def prepare(self, name: str) -> Prepared:
        """The latest version of `name`, linted (once per version in this process): render a batch
        from it, and every message records that one version."""
        found, version, template = self._resolve(name)
        assert found is not None and version is not None
        return Prepared(found, version, template)

    def _resolve(
        self, template: str | Prepared | Template | Mapping[str, Any]
    ) -> tuple[str | None, int | None, Template]:
        if isinstance(template, Prepared):
            return template.name, template.version, template.template
        if isinstance(template, Template):
            return None, None, template
        if isinstance(template, Mapping):
            return None, None, self.check(dict(template))
        stored = self.get(template)
        key = (stored.name, stored.version)
        parsed = self._checked.get(key)
        if parsed is None:  # lint before every send: once per version in this process (the sensitive list
            parsed = self.check(stored.body)  # may have changed since it was saved)
            self._checked[key] = parsed
        return stored.name, stored.version, parsed

    def _with_catalog_price(self, item: Mapping[str, Any]) -> Mapping[str, Any]:
        """The caller's item, with the catalog's price beside its own (the slot check refuses a price far
        from it: a typo, or a price from another currency)."""
        item_id = item.get("item_id")
        if not isinstance(item_id, str) or "price" not in item:
            return item
        cached = self._prices.get(item_id)
        now = time.monotonic()
        if cached is None or now - cached[0] > PRICE_CACHE_SECONDS:
            cached = (now, self._store.catalog.price(item_id))
            if len(self._prices) >= 10_000:
                self._prices.clear()
            self._prices[item_id] = cached
        known = cached[1]
        return item if known is None else {**item, "catalog_price": known}

    def _values(
        self, template: Template, person: str
    ) -> tuple[dict[str, Value], str, str | None, tuple[int, int] | None]:
        """The values the template's fields read, by trait key, each with its source; an observed or
        inferred value the person did not agree to (for the channel's purpose), or a guess that touches a
        sensitive category, is offered as refused, with the reason. One connection reads the person, their
        consent and their traits. Raises NotFound for an unknown person."""
        keys = {
            k
            for spec in template.fields.values()
            for k in SAME_TRAIT.get(spec.source_key, (spec.source_key,))
        }
        keys |= {"language", "locale", "currency"}
        purpose = CHANNEL_PURPOSE[template.channel]
        with self._store.engine.connect() as conn:
            person_id = self._store.identities.find_person(person, conn)
            if person_id is None:
                raise NotFound(f"no person is known by the id {person!r}", field="person")
            agreed = self._purposes.allows(conn, person_id, purpose)
            generation = self._store.identities.generation_of(person_id, conn)
            traits = self._profiles.traits_of(person_id, keys=keys, conn=conn)
        values: dict[str, Value] = {}
        for spec in template.fields.values():
            found = [traits[k] for k in SAME_TRAIT.get(spec.source_key, (spec.source_key,)) if k in traits]
            if not found:
                continue
            best = max(found, key=lambda t: (RANK[t.source], t.weight))
            refused = None
            if best.source != "stated" and not agreed:
                refused = f"no consent to {purpose.replace('_', ' ')}"
            elif best.source == "inferred":
                word = self.sensitive.match(best.key, best.value)
                refused = f"a guess in a sensitive category ({word})" if word else None
            values[spec.source_key] = Value(best.value, best.source, refused)
        language = traits.get("language") or traits.get("locale")
        locale = str(language.value).replace("-", "_") if language is not None else "en"
        currency = traits.get("currency")
        linked = None if generation is None else (person_id, generation)
        return values, locale, str(currency.value) if currency is not None else None, linked

    def _shop_values(self, template: Template, person: tuple[int, int] | None) -> dict[str, Value]:
        """What the shop itself knows for a message: its name (`shop_name`), and the person's own signed
        preference-centre link (`preferences_url`), where every email says they can change their mind."""
        wanted = {spec.source_key for spec in template.fields.values()}
        found: dict[str, Value] = {}
        if "shop_name" in wanted and self._shop_name:
            found["shop_name"] = Value(self._shop_name, "stated")
        if "preferences_url" in wanted and self._link is not None:
            found["preferences_url"] = Value(self._link(person), "observed")
        return found

    def _picks(self, person: str | None, channel: str, *, exposure: bool) -> list[dict[str, Any]]:
        assert self._pick is not None
        picks = self._pick(person, channel, 8, exposure)  # the placements are named as the channels
        # decide's picks are guesses: one in a sensitive category is never named in copy
        return [p for p in picks if not self.sensitive.match(p.get("category"), p.get("title"))]

    def _finish(
        self,
        name: str | None,
        version: int | None,
        person: str,
        variant: str | None,
        template: Template,
        values: Mapping[str, Value],
        given: Mapping[str, Any],
        locale: str,
        currency: str | None,
    ) -> Message:
        done: Rendered = render(
            template,
            values,
            provided=given,
            variant=variant,
            locale=locale,
            currency=currency,
            now=self._now(),
        )
        html, text = done.html, done.text
        if done.aborted is None and html is not None:
            if text is None:  # the HTML's own tags did not come through inscriptis intact (rare)
                text = text_from_html(html)
            if template.channel == "email":
                html = inline_css(html)
        return Message(
            name,
            version,
            person,
            variant,
            done.subject,
            done.preheader,
            html,
            text,
            done.fields,
            done.aborted,
        )


def read_template_file(path: Path) -> Any:
    """A template file's JSON; InvalidInput naming the file, the line and the column when it is not."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot be read ({exc.strerror})", field="FILE") from None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(
            f"{path.name}: not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}", field="FILE"
        ) from None


def _check_name(name: str) -> None:
    if not re.fullmatch(NAME_PATTERN, name):
        raise InvalidInput("a template's name is 1 to 64 lower-case letters, digits, - and _", field="name")
