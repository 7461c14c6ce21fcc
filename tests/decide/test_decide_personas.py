"""decide and personas: a reason that cites the person's persona, the persona's favourites for someone with
little history, and a placement that personalizes for one audience only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.personas.persona_shop import build

from shopkeeper.settings import Settings
from shopkeeper.shop import Shop

PLACEMENTS = '{"vip": {"n": 4, "audience": "regulars"}}'


def test_persona_reasons_favourites_and_audience_placements(sqlite_url: str) -> None:
    settings = Settings(database_url=sqlite_url, holdout_share=0, placements_json=PLACEMENTS)
    with Shop.from_settings(settings) as shop:
        people = build(shop)
        shop.personas.discover()
        shop.train()
        shop.audiences.put("regulars", {"purchased": "Party"})
        regular = shop.decide(user_id=people["regular"][0], placement="web")
        cited = [r for r in regular.reasons if "persona_id" in r.provenance]
        assert cited and "we guessed you are one of them" in cited[0].text
        assert cited[0].provenance["persona_id"] == shop.personas.of_person_id(people["regular"][0])
        # A newcomer with one order and a persona: their persona's favourites come first.
        newbie = people["newbie"][0]
        persona = shop.personas.get(shop.personas.of_person_id(newbie))
        favourites = [i["item_id"] for i in persona["top_items"]]
        decided = shop.decide(user_id=newbie, placement="web")
        assert decided.items[0].item_id in favourites
        assert any(r.provenance.get("rule") == "thin_history" for r in decided.reasons)
        # The vip placement personalizes for the regulars only.
        inside = shop.decide(user_id=people["regular"][1], placement="vip")
        assert inside.personalized
        outside = shop.decide(user_id=people["lapsed"][0], placement="vip")
        assert not outside.personalized
        assert "personalized for the audience regulars" in outside.reasons[0].text
        assert outside.reasons[0].provenance["member"] is False
        # Without personalization consent, no persona is cited.
        shop.set_consent(people["regular"][2], {"personalization": False})
        plain = shop.decide(user_id=people["regular"][2], placement="web")
        assert all(r.provenance.get("trait") != "persona" for r in plain.reasons)
    assert datetime.now(UTC) - timedelta(days=1)
