"""`ocpi-puller plan` against the sandbox and the broker: the windows a pull would plan (the same
planning, so the same windows), totals, pages at the partner's page cap, shards, an estimate; and
nothing written to Kafka."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta

from producer.commands.plan import plan
from producer.kafka.checkpoints import find_pull
from producer.kafka.connection import KafkaConnection
from producer.kafka.consume import started_consumer
from schemas.records import WindowSpec
from tests.support import TOKEN, pull, run_cli, sandbox, settings

DATE_TO = "2026-01-01T00:00:00Z"


async def topics_under(bootstrap: str, prefix: str) -> set[str]:
    consumer = await started_consumer(bootstrap)
    try:
        return {t for t in await consumer.topics() if t.startswith(f"{prefix}.")}
    finally:
        await consumer.stop()


async def test_plan_shows_the_windows_a_pull_would_have_and_writes_nothing(
    bootstrap: str, prefix: str
) -> None:
    async with sandbox(sizes={"tokens": 3000}, max_limit=200) as (base, _):
        code, out, err = await run_cli(
            "plan", "--url", f"{base}/ocpi/versions", "--module", "tokens", "--partner", "sbx",
            "--window-size", "1000", "--limit", "1000", "--date-to", DATE_TO,
            "--bootstrap-servers", bootstrap, "--topic-prefix", prefix, "--output", "json",
            env={"OCPI_PULLER_TOKEN": TOKEN},
        )  # fmt: skip
        assert code == 0, err
        assert await topics_under(bootstrap, prefix) == set()  # nothing written, not even topics
        result = await pull(
            base, bootstrap, prefix, pull_id="planned", window_size=1000, limit=1000,
            date_to=DATE_TO,
        )  # fmt: skip
        # The same id again: a pull would resume that plan (here: find it complete), not plan.
        stored_id = await plan(settings(base, bootstrap, prefix, pull_id="planned"))
        text_code, text, _ = await run_cli(
            "plan", "--url", f"{base}/ocpi/versions", "--module", "tokens", "--token", TOKEN,
            "--window-size", "1000", "--date-to", DATE_TO,
        )  # fmt: skip
    assert result.exit_code == 0
    (line,) = out.splitlines()
    report = json.loads(line)
    assert (report["command"], report["exit_code"], report["total"]) == ("plan", 0, 3000)
    (planned,) = report["plans"]
    # The pull planned the same windows from the same probes.
    (stored,) = await find_pull(KafkaConnection(bootstrap), f"{prefix}.checkpoints", "planned")
    assert stored.state.plan is not None
    assert [
        WindowSpec.model_validate({k: w[k] for k in ("index", "date_from", "date_to", "expected")})
        for w in planned["windows"]
    ] == stored.state.plan.windows
    assert len(planned["windows"]) > 1
    # Pages at what the partner serves: 1000 asked, 200 given.
    assert (planned["limit"], planned["page_size"]) == (1000, 200)
    assert planned["pages"] == sum(math.ceil(w["expected"] / 200) for w in planned["windows"])
    assert planned["pages"] == sum(w["pages"] for w in planned["windows"])
    assert planned["probes"] >= len(planned["windows"])
    assert planned["probe_latency_ms"] > 0
    assert planned["page_latency_ms"] > 0
    assert planned["estimated_s"] >= planned["planning_s"] > 0
    assert (planned["kind"], planned["date_from"], planned["date_to"]) == (
        "full",
        None,
        "2026-01-01T00:00:00+00:00",
    )
    assert planned["shards"] is None
    (again,) = stored_id.fields["plans"]
    assert again["warnings"] == [
        "stored_plan: pull planned is complete (pinned 2026-01-01T00:00:00+00:00); a pull with "
        "this id would use it, not this plan (ocpi-puller reset plans afresh)"
    ]
    assert planned["warnings"] == []
    assert text_code == 0
    assert "total: 3,000 objects in" in text
    assert "(asked 1,000, partner caps it)" in text


async def test_plan_incremental_starts_where_the_last_complete_pull_ended(
    bootstrap: str, prefix: str
) -> None:
    async with sandbox(sizes={"tokens": 500}) as (base, _):
        first = await plan(settings(base, bootstrap, prefix, incremental=True))
        result = await pull(base, bootstrap, prefix)
        after = await plan(
            settings(base, bootstrap, prefix, incremental=True, incremental_overlap_s=60)
        )
    assert result.exit_code == 0
    (nothing_before,) = first.fields["plans"]
    assert nothing_before["kind"] == "full"
    assert nothing_before["warnings"][0].startswith("no_previous_pull")
    (incremental,) = after.fields["plans"]
    pinned = result.summaries[0].date_to
    assert pinned is not None
    assert incremental["kind"] == "incremental"
    assert datetime.fromisoformat(incremental["date_from"]) == datetime.fromisoformat(
        pinned
    ) - timedelta(seconds=60)
    assert incremental["warnings"] == []


async def test_plan_of_a_sharded_pull_gives_each_shard_its_windows(
    bootstrap: str, prefix: str
) -> None:
    async with sandbox(sizes={"tokens": 4000}) as (base, _):
        outcome = await plan(
            settings(
                base,
                bootstrap,
                prefix,
                window_size=500,
                shard_count=3,
                pull_id="nightly-1",
                date_to=DATE_TO,
            )
        )
    (planned,) = outcome.fields["plans"]
    windows = planned["windows"]
    shards = planned["shards"]
    assert [s["shard"] for s in shards] == [0, 1, 2]
    assert sum(s["windows"] for s in shards) == len(windows) > 3
    for shard in shards:
        mine = [w for w in windows if w["shard"] == shard["shard"]]
        assert shard["windows"] == len(mine)
        assert shard["pages"] == sum(w["pages"] for w in mine)


async def test_a_refused_token_is_one_line_and_one_json_line() -> None:
    async with sandbox(sizes={"tokens": 10}) as (base, _):
        code, out, err = await run_cli(
            "plan", "--url", f"{base}/ocpi/versions", "--module", "tokens", "--token", "nope",
            "--output", "json",
        )  # fmt: skip
    assert code == 3
    report = json.loads(out)
    assert (report["command"], report["error_kind"]) == ("plan", "partner_auth")
    assert err.splitlines()[-1].startswith("ocpi-puller: partner_auth: partner refused")


async def plan_json(base: str, bootstrap: str, prefix: str, *flags: str) -> dict[str, object]:
    code, out, err = await run_cli(
        "plan", "--url", f"{base}/ocpi/versions", "--module", "tokens", "--partner", "sbx",
        "--limit", "100", "--window-size", "500", "--date-to", DATE_TO,
        "--bootstrap-servers", bootstrap, "--topic-prefix", prefix, "--output", "json", *flags,
        env={"OCPI_PULLER_TOKEN": TOKEN},
    )  # fmt: skip
    assert code == 0, err
    (planned,) = json.loads(out)["plans"]
    assert isinstance(planned, dict)
    return planned


async def test_plan_holds_its_estimate_to_the_partners_rate_limit_and_says_whose(
    bootstrap: str, prefix: str
) -> None:
    # A partner that advertises 4 requests/s (X-RateLimit-*, RateLimit-Policy), as it enforces.
    async with sandbox(sizes={"tokens": 2000}, max_limit=100, rate_limit=4) as (base, _):
        advertised = await plan_json(base, bootstrap, prefix)
        configured = await plan_json(base, bootstrap, prefix, "--rate-limit", "2")
    assert advertised["pages"] == 20
    limit = advertised["rate_limit"]
    assert isinstance(limit, dict)
    assert (limit["per_s"], limit["source"]) == (4.0, "advertised")
    assert "RateLimit-Policy: 4;w=1" in str(limit["detail"])
    assert float(advertised["estimated_s"]) >= 20 / 4  # 20 pages at 4/s, whatever the latency
    assert configured["rate_limit"] == {"per_s": 2.0, "source": "configured",
                                        "detail": "--rate-limit 2"}  # fmt: skip
    assert float(configured["estimated_s"]) >= 20 / 2
    # The text says it too.
    async with sandbox(sizes={"tokens": 2000}, max_limit=100, rate_limit=4) as (base, _):
        code, text, _ = await run_cli(
            "plan", "--url", f"{base}/ocpi/versions", "--module", "tokens", "--token", TOKEN,
            "--limit", "100", "--date-to", DATE_TO,
        )  # fmt: skip
    assert code == 0
    assert "  rate limit: 4 requests/s, advertised by the partner (" in text


async def test_plan_learns_an_unadvertised_limit_from_a_429(bootstrap: str, prefix: str) -> None:
    async with sandbox(sizes={"tokens": 3000}, max_limit=100, rate_limit=2,
                       rate_limit_headers=False) as (base, _):  # fmt: skip
        planned = await plan_json(base, bootstrap, prefix, "--window-size", "100")
    limit = planned["rate_limit"]
    assert isinstance(limit, dict)
    assert limit["source"] == "observed"
    assert str(limit["detail"]).startswith("HTTP 429 after ")
    assert float(planned["estimated_s"]) >= int(planned["pages"]) / float(limit["per_s"])  # type: ignore[call-overload]
