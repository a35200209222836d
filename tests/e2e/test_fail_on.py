"""`--fail-on` (issue 25): a complete pull that reported a warning the operator named exits 5
with `error_kind` `warning`, per partner in a partners file too; `all` spares the notices."""

from __future__ import annotations

import json
from pathlib import Path

import orjson

from tests.support import TOKEN, pull, run_cli, sandbox


async def test_a_named_warning_fails_a_complete_pull(bootstrap: str, prefix: str) -> None:
    async with sandbox(sizes={"tokens": 300}, max_limit=100, dialects=("lowercase",)) as (base, _):
        plain = await pull(base, bootstrap, f"{prefix}a")
        named = await pull(base, bootstrap, f"{prefix}b", fail_on="dialect")
        other = await pull(base, bootstrap, f"{prefix}c", fail_on="full_page_without_link")
        every = await pull(base, bootstrap, f"{prefix}d", fail_on="all")
    assert plain.exit_code == 0
    assert any(w.startswith("dialect enum_case") for w in plain.summaries[0].warnings)
    summary = named.summaries[0]
    assert (named.exit_code, summary.exit_code, summary.error_kind) == (5, 5, "warning")
    assert summary.complete  # every object is there: the operator asked for strictness
    assert summary.error is not None
    assert summary.error.startswith("--fail-on dialect_enum_case: dialect enum_case: 300 objects")
    assert other.exit_code == 0
    assert every.exit_code == 5


async def test_an_event_only_warning_counts_and_all_spares_notices(
    bootstrap: str, prefix: str
) -> None:
    # --incremental without a previous pull: the no_previous_pull notice, an event only.
    async with sandbox(sizes={"tokens": 100}) as (base, _):
        named = await pull(base, bootstrap, f"{prefix}a", incremental=True,
                           fail_on="no_previous_pull")  # fmt: skip
        every = await pull(base, bootstrap, f"{prefix}b", incremental=True, fail_on="all")
    assert (named.exit_code, named.summaries[0].error_kind) == (5, "warning")
    assert "no_previous_pull" in (named.summaries[0].error or "")
    assert every.exit_code == 0


async def test_fail_on_per_partner_in_a_partners_file_and_on_the_command_line(
    bootstrap: str, prefix: str, tmp_path: Path
) -> None:
    async with sandbox(sizes={"tokens": 200}, max_limit=100, dialects=("lowercase",)) as (base, _):
        entry = {"url": f"{base}/ocpi/versions", "token_env": "SBX_TOKEN", "modules": "tokens",
                 "country_code": "NL", "party_id": "SBX"}  # fmt: skip
        partners = {
            "partners": [
                {**entry, "name": "strict", "options": {"fail_on": ["dialect"]}},
                {**entry, "name": "lenient"},
            ]
        }
        path = tmp_path / "partners.yaml"
        path.write_text(orjson.dumps(partners).decode())  # JSON is YAML
        common = ("pull", "--partners", str(path), "--bootstrap-servers", bootstrap,
                  "--output", "json")  # fmt: skip
        code, out, err = await run_cli(
            *common, "--topic-prefix", f"{prefix}a", env={"SBX_TOKEN": TOKEN}
        )
        by_partner = {p["partner"]: p for p in json.loads(out)["pulls"]}
        assert code == 5, err
        assert (by_partner["strict"]["exit_code"], by_partner["lenient"]["exit_code"]) == (5, 0)
        assert by_partner["strict"]["error_kind"] == "warning"
        assert err.splitlines()[-1].startswith("ocpi-puller: strict/tokens: warning: --fail-on ")
        # An unknown kind is a config error before anything runs.
        code, _, err = await run_cli(
            *common, "--topic-prefix", f"{prefix}b", "--fail-on", "dialects",
            env={"SBX_TOKEN": TOKEN},
        )  # fmt: skip
        assert code == 2
        assert err.startswith("ocpi-puller: config: --fail-on: unknown warning kind dialects")
