"""Categories and attributes derived from product titles alone, for catalogs that come without them.

The order import reads them from the titles its file carries, and the catalog stores what it derives: a
pure function of the titles, so it sits with the readers, below the catalog.

English product titles name what the thing is with their head noun: "WHITE HANGING HEART T-LIGHT HOLDER"
is a holder. A gift shop's titles also come in product lines: the product first, then the design, as in
"JUMBO BAG DOILEY PATTERNS" (a bag) and "HOT WATER BOTTLE KEEP CALM" (a bottle). Both are read with what
*this catalog* says about its own words:

1. Each title becomes words: lower-cased, numbers and words with digits dropped, function words ("of",
   "the", "i'm") dropped, plurals made singular ("boxes" -> "box"). Only the words before a preposition
   count ("GLASS GEMS IN BAG" is gems). Colours, sizes, patterns, occasions, places and styles
   ("retrospot", "design", "christmas", "london", "vintage") are never heads.
2. Learned from the whole catalog: a word's *headness* is the share of the titles containing it that it
   ends, its *firstness* the share that it starts. "holder" ends most titles it is in and starts none;
   "woodland" ends some ("LUNCH BAG WOODLAND") but starts as many, so it is a theme, not a kind of thing.
3. The rightmost head: the rightmost word that ends at least two titles, with headness >= `min_headness`
   and firstness < `max_firstness`; else the last candidate word.
4. Head nouns win over trailing designs: a title that starts with a *product line* is headed by the
   line's last word, when that word ends more titles than the rightmost head does. A product line is a
   run of first words ("hot water bottle", "jumbo bag", "wrap") that at least `min_line_designs` titles
   go on from with different last words, none of them in half the titles, and mostly with words that end
   fewer titles than the line's own: designs ("keep calm", "dolly girl", "suki"), not other products.
   "HANGING HEART" is no line: most titles go on with "t-light holder", a product.
5. The path is the head's plural ("Bags"), then, when at least `min_bigram_items` titles share it, the
   word before the head with it ("Bags > Lunch bags"). Heads with fewer than `min_items` titles are grouped
   under "Other" ("Other > Doves"); titles with no candidate word at all are "Other".

Colour and size words become attributes: `{"colour": "red", "size": "jumbo"}` (the first of each).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

OTHER = "Other"
SEPARATOR = " > "


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Surface word -> canonical colour. British spellings, as the shops we read use.
COLOURS: dict[str, str] = {
    "red": "red",
    "pink": "pink",
    "blue": "blue",
    "green": "green",
    "white": "white",
    "black": "black",
    "ivory": "ivory",
    "cream": "cream",
    "yellow": "yellow",
    "purple": "purple",
    "orange": "orange",
    "gold": "gold",
    "silver": "silver",
    "grey": "grey",
    "gray": "grey",
    "brown": "brown",
    "turquoise": "turquoise",
    "lilac": "lilac",
    "beige": "beige",
    "navy": "navy",
    "aqua": "aqua",
    "copper": "copper",
    "multicolour": "multicolour",
    "multicolor": "multicolour",
}
# Surface word -> canonical size.
SIZES: dict[str, str] = {
    "tiny": "tiny",
    "mini": "mini",
    "small": "small",
    "medium": "medium",
    "large": "large",
    "big": "large",
    "jumbo": "jumbo",
    "giant": "giant",
}
# Articles, prepositions and the pronouns and verbs of slogans ("I'M ON HOLIDAY METAL SIGN"): never a head.
_FUNCTION_WORDS = _word_set(
    """a an and as at by for from in into of on or the to with w
    i i'm im me my you your it it's its we our us is am are be do don't not let's lets"""
)
# The head comes before these: "GLASS GEMS IN BAG", "SHELF WITH 4 HOOKS".
_PREPOSITIONS = _word_set("in with w on inside")
# Words that describe, count or set a theme but never say what a thing is: patterns, occasions, places
# and styles often trail the head ("LUNCH BOX I LOVE LONDON", "BISCUIT TIN VINTAGE CHRISTMAS").
_NEVER_HEADS = _word_set(
    """assorted design designs set sets pack packs cm size colour colours retrospot polkadot polka dot
    dots spot spots spotty stripe stripes striped floral paisley gingham finish new s m l xl
    christmas xmas easter valentine valentines halloween wedding london paris english french
    vintage retro antique regency edwardian victorian baroque"""
)
# Plurals the suffix rules get wrong, and nouns with no plural worth showing.
_SINGULAR_EXCEPTIONS = {
    "leaves": "leaf",
    "knives": "knife",
    "shelves": "shelf",
    "scarves": "scarf",
    "wolves": "wolf",
    "mice": "mouse",
    "geese": "goose",
    "children": "child",
    "childrens": "childrens",
    "dice": "dice",
    "scissors": "scissors",
    "glass": "glass",
    "glasses": "glass",
    "dress": "dress",
    "cross": "cross",
    "cactus": "cactus",
    "chess": "chess",
    "series": "series",
    "christmas": "christmas",
    "xmas": "xmas",
    "canvas": "canvas",
    "dominoes": "domino",
}
_IRREGULAR_PLURALS = {one: many for many, one in _SINGULAR_EXCEPTIONS.items() if one != many}
_UNCOUNTABLE = _word_set("cutlery bunting jewellery stationery glassware tableware luggage confetti incense")
_WORD = re.compile(r"[a-z][a-z'\-]*")
_DIGIT = re.compile(r"\d")


def words(title: str) -> list[str]:
    """The title's words: lower-case, without numbers, words containing digits, or function words."""
    return [w for w in _all_words(title) if w not in _FUNCTION_WORDS]


@lru_cache(maxsize=1 << 16)
def _all_words(title: str) -> tuple[str, ...]:
    found: list[str] = []
    for raw in title.lower().replace("/", " ").replace("+", " ").split():
        if _DIGIT.search(raw):
            continue
        for word in _WORD.findall(raw):
            word = word.strip("'-")
            if word:
                found.append(word)
    return tuple(found)


def head_phrase(title: str) -> list[str]:
    """The words that can hold the head: those before a preposition ("GEMS IN BAG" -> gems), if any."""
    everything = _all_words(title)
    for at, word in enumerate(everything):
        if word in _PREPOSITIONS:
            before = [w for w in everything[:at] if w not in _FUNCTION_WORDS]
            if _candidates(before):
                return before
            break
    return [w for w in everything if w not in _FUNCTION_WORDS]


@lru_cache(maxsize=1 << 16)
def singular(word: str) -> str:
    """`boxes` -> `box`, `doilies` -> `doily`, `cases` -> `case`, `glasses` -> `glass`."""
    if word in _SINGULAR_EXCEPTIONS:
        return _SINGULAR_EXCEPTIONS[word]
    if len(word) <= 3 or not word.endswith("s") or word.endswith(("ss", "us", "is", "'s")):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "ches", "shes", "zzes")):
        return word[:-2]
    return word[:-1]


def plural(word: str) -> str:
    """`bag` -> `bags`, `box` -> `boxes`, `doily` -> `doilies`; uncountable nouns stay as they are."""
    if word in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[word]
    if word in _UNCOUNTABLE or word.endswith("s"):
        return word
    if word.endswith("y") and len(word) > 1 and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    if word.endswith(("x", "z", "ch", "sh")):
        return word + "es"
    return word + "s"


def attributes(title: str) -> dict[str, str]:
    """Colour and size named in a title (the first of each), e.g. `{"colour": "red", "size": "jumbo"}`."""
    found: dict[str, str] = {}
    for word in words(title):
        # "red/white" splits into two words in `words`; the first colour wins.
        if "colour" not in found and word in COLOURS:
            found["colour"] = COLOURS[word]
        elif "size" not in found and word in SIZES:
            found["size"] = SIZES[word]
    return found


def _candidates(title_words: list[str]) -> list[str]:
    """The words that could be the head, singular, in title order."""
    return [word for _, word in _candidate_positions(title_words)]


def _candidate_positions(title_words: list[str]) -> list[tuple[int, str]]:
    """(where in `title_words`, singular word) of each word that could be the head."""
    return [
        (i, singular(w))
        for i, w in enumerate(title_words)
        if w not in COLOURS and w not in SIZES and w not in _NEVER_HEADS and singular(w) not in _NEVER_HEADS
    ]


@dataclass(frozen=True, slots=True)
class Category:
    """Where a title goes: its category path, its head noun (singular) and its attributes."""

    path: str
    head: str | None
    attributes: dict[str, str] = field(default_factory=dict)


class TitleCategorizer:
    """Learns from a catalog's titles which words name a kind of product, then places titles.

    `fit` learns `headness_` and `firstness_` (word -> share of its titles it ends, and starts), the
    product lines `lines_` (runs of first words, see the module), `head_counts_` (head -> titles) and
    `bigram_counts_`; `category` places a title with what was learned.
    """

    def __init__(
        self,
        *,
        min_items: int = 5,
        min_bigram_items: int = 3,
        min_headness: float = 0.4,
        max_firstness: float = 0.3,
        min_line_designs: int = 3,
        min_line_headness: float = 0.3,
    ) -> None:
        self.min_items = min_items
        self.min_bigram_items = min_bigram_items
        self.min_headness = min_headness
        self.max_firstness = max_firstness
        self.min_line_designs = min_line_designs
        self.min_line_headness = min_line_headness

    def fit(self, titles: Iterable[str]) -> TitleCategorizer:
        distinct = list(dict.fromkeys(titles))
        ends: Counter[str] = Counter()
        starts: Counter[str] = Counter()
        contains: Counter[str] = Counter()
        plurals: dict[str, str] = {}
        parsed: list[list[str]] = []
        for title in distinct:
            title_words = head_phrase(title)
            for w in title_words:
                if singular(w) != w:
                    plurals.setdefault(singular(w), w)
            candidates = _candidates(title_words)
            parsed.append(title_words)
            if candidates:
                ends[candidates[-1]] += 1
                starts[candidates[0]] += 1
                contains.update(set(candidates))
        self.ends_ = ends
        self.headness_ = {w: ends[w] / n for w, n in contains.items()}
        self.firstness_ = {w: starts[w] / n for w, n in contains.items()}
        self.plurals_ = plurals
        self.lines_ = self._product_lines([_candidates(title_words) for title_words in parsed])
        self.head_counts_: Counter[str] = Counter()
        self.bigram_counts_: Counter[tuple[str, str]] = Counter()
        for title_words in parsed:
            head, before = self._head(title_words)
            if head is not None:
                self.head_counts_[head] += 1
                if before is not None:
                    self.bigram_counts_[(before, head)] += 1
        return self

    def _product_lines(self, titles: list[list[str]]) -> frozenset[tuple[str, ...]]:
        """Runs of first words that titles go on from with designs, not with other products."""
        endings: dict[tuple[str, ...], Counter[str]] = {}
        for candidates in titles:
            for k in range(1, len(candidates)):
                endings.setdefault(tuple(candidates[:k]), Counter())[candidates[-1]] += 1
        lines: set[tuple[str, ...]] = set()
        for prefix, last_words in endings.items():
            noun = prefix[-1]
            if self.ends_.get(noun, 0) < 2 or self.headness_.get(noun, 0.0) < self.min_line_headness:
                continue
            titles_on = sum(last_words.values())
            products = sum(n for w, n in last_words.items() if self.ends_.get(w, 0) >= self.ends_[noun])
            if (
                len(last_words) >= self.min_line_designs
                and 2 * max(last_words.values()) < titles_on
                and 2 * products < titles_on
            ):
                lines.add(prefix)
        return frozenset(lines)

    def _rightmost_head(self, candidates: list[str]) -> str:
        for word in reversed(candidates):
            if (
                self.ends_.get(word, 0) >= 2
                and self.headness_.get(word, 0.0) >= self.min_headness
                and self.firstness_.get(word, 0.0) < self.max_firstness
            ):
                return word
        return candidates[-1]

    def _head(self, title_words: list[str]) -> tuple[str | None, str | None]:
        """The head noun of a title and the word right before it (for the bigram), both singular."""
        positions = _candidate_positions(title_words)
        if not positions:
            return None, None
        candidates = [word for _, word in positions]
        head = self._rightmost_head(candidates)
        at = max(i for i, word in positions if word == head)
        for k in range(len(candidates) - 1, 0, -1):
            noun = candidates[k - 1]
            if tuple(candidates[:k]) in self.lines_ and self.ends_[noun] > self.ends_.get(head, 0):
                head, at = noun, positions[k - 1][0]
                break
        before: str | None = None
        if at > 0:
            previous = title_words[at - 1]
            if previous not in COLOURS and previous not in SIZES and previous not in _NEVER_HEADS:
                before = singular(previous)
        return head, before

    def plural_of(self, word: str) -> str:
        """The plural of a head: as the catalog's titles write it, else by rule."""
        return self.plurals_.get(word) or plural(word)

    def category(self, title: str) -> Category:
        """The category path, head and attributes of one title, using what `fit` learned."""
        head, before = self._head(head_phrase(title))
        found = attributes(title)
        if head is None:
            return Category(OTHER, None, found)
        top = self.plural_of(head).capitalize()
        if self.head_counts_.get(head, 0) < self.min_items:
            return Category(f"{OTHER}{SEPARATOR}{top}", head, found)
        if before is not None and self.bigram_counts_.get((before, head), 0) >= self.min_bigram_items:
            return Category(f"{top}{SEPARATOR}{before.capitalize()} {self.plural_of(head)}", head, found)
        return Category(top, head, found)


def categorize(titles: Mapping[str, str], *, min_items: int = 5) -> dict[str, Category]:
    """Categories for a catalog, learned from its own titles: `{item_id: title}` -> `{item_id: Category}`."""
    model = TitleCategorizer(min_items=min_items).fit(titles.values())
    return {item_id: model.category(title) for item_id, title in titles.items()}
