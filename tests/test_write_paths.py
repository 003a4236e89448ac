"""The choice between inserting with no look-up and looking up first follows the share of
a source's table writes that met a stored id, both ways, per source."""

from __future__ import annotations

from ingest_service.write_paths import WritePaths


def test_a_new_source_is_written_with_no_look_up() -> None:
    assert WritePaths(threshold=0.25).optimistic("fresh")


def test_writes_meeting_stored_ids_switch_a_source_to_look_ups_and_back() -> None:
    paths = WritePaths(threshold=0.25, weight=0.1)
    for _ in range(3):
        paths.observe("resent", met_stored=True)
    assert not paths.optimistic("resent")  # 0.27 of the recent writes
    assert paths.optimistic("other")  # sources are told apart
    for _ in range(2):
        paths.observe("resent", met_stored=False)
    assert paths.optimistic("resent")  # 0.22


def test_an_occasional_resend_keeps_a_source_on_the_optimistic_path() -> None:
    paths = WritePaths(threshold=0.25, weight=0.1)
    for n in range(200):
        paths.observe("steady", met_stored=n % 10 == 0)  # one write in ten met a stored id
        assert paths.optimistic("steady")


def test_a_threshold_of_zero_looks_up_first_always() -> None:
    """INGEST_INSERT_FIRST_BELOW=0: no write is attempted without its look-up."""
    paths = WritePaths(threshold=0.0)
    assert not paths.optimistic("fresh")
    paths.observe("fresh", met_stored=False)
    assert not paths.optimistic("fresh")
