"""Which way a source's rows go into their tables: straight in, or after a look-up.

SendGrid resends a batch only when it got no 2xx, so in steady state most group commits hold
no event already stored, and inserting every row with no look-up (`insert_all_unless_stored`)
saves the look-up's cost. When a stored id is met, that insert is refused and rolled back,
and the rows take the look-up path after all: the refused insert is wasted work. A source
whose batches keep meeting stored ids (resends after an outage, a sender posting its events
twice) is better served by looking up first.

`WritePaths` keeps, per source schema, the recent share of its table writes that met a
stored id, as a moving average: both paths see it (the refused insert, or ids found by the
look-up), so the choice follows the traffic both ways. The threshold is where a refused
insert's waste outweighs the look-ups saved: `INGEST_INSERT_FIRST_BELOW` (see
docs/performance.md for the measurements).
"""

from __future__ import annotations

# The weight of each table write in the moving average: about the last 10 count.
_WEIGHT = 0.1


class WritePaths:
    """Per source schema: insert with no look-up while stored ids are rarely met."""

    def __init__(self, threshold: float, weight: float = _WEIGHT) -> None:
        # At or above `threshold` of a source's table writes meeting a stored id, its rows
        # are looked up first; 0 looks up always.
        self.threshold = threshold
        self.weight = weight
        self._met_stored: dict[str, float] = {}

    def optimistic(self, schema: str) -> bool:
        return self._met_stored.get(schema, 0.0) < self.threshold

    def observe(self, schema: str, met_stored: bool) -> None:
        """One table write of `schema`'s rows: did it meet an id already stored?"""
        share = self._met_stored.get(schema, 0.0)
        self._met_stored[schema] = share + self.weight * (float(met_stored) - share)

    def share(self, schema: str) -> float:
        return self._met_stored.get(schema, 0.0)
