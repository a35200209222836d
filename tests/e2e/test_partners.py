"""Real partners' habits (ocpi.md P2, P8, P9, P13) and many partners at once, against the sandbox
and a real broker."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from producer.config import PullSettings
from producer.report import json_summary
from tests.support import TOKEN, just_after, keys, pull, records, run_pull, sandbox, truth_keys

pytestmark = pytest.mark.slow


async def test_rate_limit_holds_at_the_partner(bootstrap: str, prefix: str) -> None:
    async with sandbox(sizes={"tokens": 3000}, max_limit=100) as (base, state):
        result = await pull(base, bootstrap, prefix, rate_limit=10.0, rate_burst=2.0, concurrency=8)
        highest = state.stats.max_requests_per_second()
    assert result.exit_code == 0
    assert result.summaries[0].objects_emitted == 3000
    # Counted at the partner: never more than the rate plus the burst in any one second.
    assert highest <= 12, highest


async def test_429_without_retry_after_slows_down_and_completes(
    bootstrap: str, prefix: str
) -> None:
    # A partner limited to 15 requests/s that says so only with bare 429s (as Plugsurfing does).
    async with sandbox(
        sizes={"tokens": 4000}, max_limit=50, rate_limit=15, throttle_sends_retry_after=False
    ) as (base, state):
        result = await pull(base, bootstrap, prefix, max_attempts=20, concurrency=8)
        throttled = state.stats.faults["throttle"]
        served = state.stats.pages_served
    assert result.exit_code == 0
    assert result.summaries[0].objects_emitted == 4000
    assert throttled > 0
    # Slowing down means most requests got through: far fewer 429s than pages.
    assert throttled < served


@pytest.mark.parametrize("probe", ["auto", "on"])
async def test_probe_past_end_pulls_everything_from_a_broken_total_partner(
    bootstrap: str, prefix: str, probe: str
) -> None:
    async with sandbox(sizes={"tokens": 2500}, max_limit=100, broken_total=True) as (base, state):
        without = await pull(base, bootstrap, f"{prefix}a", probe_past_end="off")
        probing = await pull(base, bootstrap, f"{prefix}b", probe_past_end=probe)
        expected = truth_keys(state, "tokens", "2.2.1", int(time.time() * 1000) + 1000)
    # Off: the first full page without Link looks like the end; it is reported.
    assert without.summaries[0].objects_emitted == 100
    assert any(w.startswith("full_page_without_link: ") for w in without.summaries[0].warnings)
    # Auto (the default) or on: every object, and the summary says this partner needed it.
    summary = probing.summaries[0]
    assert probing.exit_code == 0
    assert set(await keys(bootstrap, f"{prefix}b.tokens")) == set(expected)
    assert summary.found_by_probing == 2400
    assert any(w.startswith("partner_needed_probe_past_end: ") for w in summary.warnings)


def tombstones(produced: list[object]) -> set[str]:
    return {r.key.decode() for r in produced if r.value is None}  # type: ignore[attr-defined]


async def test_tombstones_exactly_for_deleted_keys_after_a_complete_pull(
    bootstrap: str, prefix: str
) -> None:
    async with sandbox(sizes={"tariffs": 600}) as (base, state):
        first = await pull(base, bootstrap, prefix, module="tariffs", emit_tombstones=True)
        assert first.exit_code == 0
        assert first.summaries[0].tombstones == 0  # the first pull only records what exists
        dataset = state.datasets["tariffs"]
        now = int(time.time() * 1000)
        deleted = [dataset.delete(i, now) for i in (5, 77, 300, 599)]
        before = truth_keys(state, "tariffs", "2.2.1", now - 10_000)
        after = truth_keys(state, "tariffs", "2.2.1", now + 10_000)
        gone = set(before) - set(after)
        assert len(gone) == len(deleted) == 4
        # Pinned in the past: objects updated since then lie outside the snapshot but still
        # exist, and must not be tombstoned (the pull checks what changed after its pin).
        dataset.update(10, now)
        second = await pull(
            base,
            bootstrap,
            prefix,
            module="tariffs",
            emit_tombstones=True,
            date_to=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now / 1000 - 5)),
        )
    summary = second.summaries[0]
    assert second.exit_code == 0, summary
    assert summary.tombstones == 4
    produced = await records(bootstrap, f"{prefix}.tariffs")
    assert tombstones(produced) == gone


async def test_no_tombstones_after_an_incomplete_pull(bootstrap: str, prefix: str) -> None:
    async with sandbox(sizes={"tariffs": 300}, max_limit=50) as (base, state):
        first = await pull(base, bootstrap, prefix, module="tariffs", emit_tombstones=True)
        assert first.exit_code == 0
        state.datasets["tariffs"].delete(7, int(time.time() * 1000))
        broken = await pull(
            base,
            bootstrap,
            prefix,
            module="tariffs",
            emit_tombstones=True,
            date_from="2020-01-01T00:01:00Z",  # not a full pull: never tombstones
        )
    assert broken.summaries[0].tombstones == 0
    assert broken.summaries[0].tombstones_skipped is not None
    assert "not a full pull" in broken.summaries[0].tombstones_skipped
    assert tombstones(await records(bootstrap, f"{prefix}.tariffs")) == set()


@pytest.mark.parametrize(
    ("partner", "why"),
    [
        # No X-Total-Count: no window's count can be checked, and objects that changes during
        # the pull shift past every page would be tombstoned alive.
        ({"no_paging_headers": True}, "no X-Total-Count"),
        # A date filter 20 s early: objects listed before their window's date_from.
        ({"date_filter_shift_s": -20}, "date filter is off"),
    ],
)
async def test_no_tombstones_when_the_pull_cannot_prove_it_saw_everything(
    bootstrap: str, prefix: str, partner: dict[str, object], why: str
) -> None:
    async with sandbox(sizes={"tariffs": 300}, max_limit=50, **partner) as (base, state):
        options = {"module": "tariffs", "emit_tombstones": True, "window_size": 50}
        first = await pull(base, bootstrap, prefix, **options)
        assert first.exit_code == 0, first.summaries[0]
        state.datasets["tariffs"].delete(7, int(time.time() * 1000))
        second = await pull(base, bootstrap, prefix, **options)
    summary = second.summaries[0]
    assert summary.tombstones == 0
    assert summary.tombstones_skipped is not None
    assert why in summary.tombstones_skipped
    assert any(w.startswith("tombstones_not_emitted: ") for w in summary.warnings)
    assert tombstones(await records(bootstrap, f"{prefix}.tariffs")) == set()


async def test_skip_unchanged_produces_only_changed_objects_across_restarts(
    bootstrap: str, prefix: str
) -> None:
    async with sandbox(sizes={"tokens": 1000}, max_limit=200) as (base, state):
        first = await pull(base, bootstrap, prefix, skip_unchanged=True)
        assert first.summaries[0].objects_emitted == 1000
        dataset = state.datasets["tokens"]
        now = int(time.time() * 1000)
        changed = [dataset.update(i, now) for i in range(0, 50, 5)]  # 10 real changes
        for i in range(100, 140):  # 40 objects whose last_updated moves, content does not (P8)
            dataset.update(i, now, touch=True)
        # A new process in effect: the state comes back from Kafka, not from memory. Its date_to
        # lies after the changes.
        second = await pull(base, bootstrap, prefix, skip_unchanged=True, date_to=just_after(now))
    summary = second.summaries[0]
    assert second.exit_code == 0, summary
    assert summary.objects_emitted == len(changed) == 10
    assert summary.skipped_unchanged == 990
    produced = await records(bootstrap, f"{prefix}.tokens")
    assert len(produced) == 1010


async def test_a_partners_file_with_three_partners_gives_one_summary(
    bootstrap: str, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALPHA_TOKEN", TOKEN)
    (tmp_path / "beta-token").write_text(TOKEN + "\n")
    async with sandbox(sizes={"tokens": 700, "locations": 150, "tariffs": 40, "cdrs": 90}) as (
        base,
        _,
    ):
        partners = {
            "defaults": {"concurrency": 2},
            "partners": [
                {
                    "name": "alpha",
                    "url": f"{base}/ocpi/versions",
                    "token_env": "ALPHA_TOKEN",
                    "modules": ["tokens"],
                },
                {
                    "name": "beta",
                    "url": f"{base}/ocpi/versions",
                    "token_file": str(tmp_path / "beta-token"),
                    "modules": ["locations", "tariffs"],
                    "options": {"limit": 25},
                },
                {
                    "name": "gamma",
                    "url": f"{base}/ocpi/versions",
                    "token_env": "ALPHA_TOKEN",
                    "modules": ["cdrs"],
                    "ocpi_version": "2.1.1",
                    "country_code": "NL",
                    "party_id": "SBX",
                },
            ],
        }
        path = tmp_path / "partners.yaml"
        path.write_text(orjson.dumps(partners).decode())  # JSON is YAML
        settings = PullSettings(
            partners_file=path,
            bootstrap_servers=bootstrap,
            topic_prefix=prefix,
            progress_bar=False,
            topic_partitions=3,
        )
        result = await run_pull(settings)
    assert result.exit_code == 0
    summary = json_summary(result)
    assert summary["complete"] is True
    assert sorted((p["partner"], p["module"], p["objects_emitted"]) for p in summary["pulls"]) == [
        ("alpha", "tokens", 700),
        ("beta", "locations", 150),
        ("beta", "tariffs", 40),
        ("gamma", "cdrs", 90),
    ]
    assert summary["objects_emitted"] == 980
    assert len(set(await keys(bootstrap, f"{prefix}.cdrs"))) == 90
