"""Personas and audiences: the few readable groups that cover most customers, and who a condition covers.

- the numeric core, pure (arrays in, arrays out): `clustering` (discovery: k, RFM groups, matching runs),
  `features`, `rules` (the readable rule of each persona), `naming`, `stability`;
- `service`: discovery on a shop, personas' ids and names across runs, each customer's `persona` guess;
- `conditions`: the audience language; `members`: who meets a condition; `audiences`: saved audiences,
  their reach and the reach guard, and targeting for experiments, moment rules and placements;
- `compare`: broad vs narrow, measured.
"""
