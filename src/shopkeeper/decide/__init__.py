"""The serving stage: what to show a person in a placement, and why.

- `pipeline`: the `Decider`, the one pipeline every channel calls;
- `rules`: the pure filters over arrays and rows applied after scoring, and which reason holds;
- `reasons`: every reason's wording;
- `cache`: what a process keeps between calls, and how it knows it is current;
- `placements`: where a decision is shown, and the rules it follows there;
- `log`: the decision types, and the log that stores each decision as an exposure.
"""
