"""What a run does with each collection of the catalogue (shared.collections): read it with
its reader, or record at once why not: `skipped` (not selected for the source) or
`forbidden` (the key reaches neither Marketing Campaigns API, for the marketing ones).

Only the marketing collections depend on the API the account uses; suppressions, groups,
templates and statistics are read the same way for every account.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.collections import COLLECTIONS, Collection, selected
from sync_service.api_detection import ApiChoice
from sync_service.collection_reader import CollectionReader
from sync_service.ledger import CollectionStatus
from sync_service.readers import LEGACY_READERS, MARKETING_READERS
from sync_service.records import LEGACY, MARKETING
from sync_service.sender_readers import MARKETING_SENDERS_READER, VERIFIED_SENDERS_READER
from sync_service.stats_readers import STATS_READERS
from sync_service.suppression_readers import SUPPRESSION_READERS
from sync_service.template_readers import TEMPLATE_READERS

NOT_SELECTED = "not selected for this source"

# The readers of the marketing collections for each API; an account with neither still has
# verified senders.
_BY_API: dict[str | None, dict[str, CollectionReader]] = {
    MARKETING: {reader.table: reader for reader in (*MARKETING_READERS, MARKETING_SENDERS_READER)},
    LEGACY: {reader.table: reader for reader in (*LEGACY_READERS, VERIFIED_SENDERS_READER)},
    None: {"senders": VERIFIED_SENDERS_READER},
}
_EVERY_ACCOUNT: dict[str, CollectionReader] = {
    reader.table: reader for reader in (*SUPPRESSION_READERS, *TEMPLATE_READERS, *STATS_READERS)
}


@dataclass(frozen=True)
class Planned:
    collection: Collection
    reader: CollectionReader | None
    # When there is no reader: the ledger's status and message for the collection.
    status: CollectionStatus | None = None
    message: str | None = None
    # Appended to the ledger's message of a collection that was read.
    note: str | None = None


def needs_api_choice(chosen: list[str] | None) -> bool:
    """Whether any chosen collection is read from the account's Marketing Campaigns API."""
    return any(collection.marketing for collection in selected(chosen))


def plan_collections(choice: ApiChoice | None, chosen: list[str] | None) -> list[Planned]:
    """Every collection of the catalogue, in its order. `choice` is None only when no chosen
    collection needs it."""
    wanted = {collection.name for collection in selected(chosen)}
    plan = []
    for collection in COLLECTIONS:
        if collection.name not in wanted:
            plan.append(Planned(collection, None, "skipped", NOT_SELECTED))
        elif not collection.marketing:
            plan.append(Planned(collection, _EVERY_ACCOUNT[collection.name]))
        else:
            assert choice is not None, "a marketing collection needs the API choice"
            reader = _BY_API[choice.api].get(collection.name)
            if reader is None:
                plan.append(Planned(collection, None, "forbidden", choice.reason))
            else:
                plan.append(Planned(collection, reader, note=choice.reason))
    return plan
