"""`ocpi-puller discover` against the sandbox partner over real sockets: the versions offered, the
one chosen and why, every endpoint with its role; one clear line when nothing fits."""

from __future__ import annotations

import json

from producer.commands.discover import discover
from producer.config import PullSettings
from producer.ocpi.protocol.modules import MODULES, VERSION_PREFERENCE
from tests.support import TOKEN, run_cli, sandbox


async def test_discover_shows_the_offer_the_choice_and_every_endpoint() -> None:
    async with sandbox() as (base, _):
        url = f"{base}/ocpi/versions"
        env = {"OCPI_PULLER_TOKEN": TOKEN}  # the token from the environment, as for `pull`
        code, out, err = await run_cli("discover", "--url", url, "--output", "json", env=env)
        text_code, text, text_err = await run_cli("discover", "--url", url, env=env)
    assert (code, text_code) == (0, 0), err + text_err
    (line,) = out.splitlines()
    report = json.loads(line)
    offered = [v["version"] for v in report["versions"]]
    assert offered == ["2.1.1", "2.2.1", "2.3.0"]
    assert {v["version"]: v["spoken"] for v in report["versions"]} == {
        v: v in VERSION_PREFERENCE for v in offered
    }
    chosen = next(v for v in VERSION_PREFERENCE if v in offered)  # the newest we speak
    assert report["chosen"] == chosen
    assert report["reason"].startswith("the highest version both sides speak")
    assert [e["identifier"] for e in report["endpoints"]] == list(MODULES)
    assert {e["role"] for e in report["endpoints"]} == {"SENDER"}
    assert all(e["pulled"] and f"/{chosen}/" in e["url"] for e in report["endpoints"])
    assert report["pullable"] == list(MODULES)
    assert (report["exit_code"], report["error"]) == (0, None)
    assert f"chosen: {chosen}: the highest version both sides speak" in text
    assert "<- pull --module tokens" in text
    assert TOKEN not in out + err + text + text_err


async def test_a_2_1_1_partner_has_no_roles_and_a_wish_is_followed() -> None:
    async with sandbox(ocpi_versions=("2.1.1", "2.2.1")) as (base, _):
        outcome = await discover(
            PullSettings(url=f"{base}/ocpi/versions", token=TOKEN, ocpi_version="2.1.1")
        )
    assert outcome.exit_code == 0
    assert outcome.fields["chosen"] == "2.1.1"
    assert outcome.fields["reason"].startswith("pinned by --ocpi-version")
    assert {e["role"] for e in outcome.fields["endpoints"]} == {None}
    assert outcome.fields["pullable"] == list(MODULES)
    assert any(line.startswith("  tokens     -  ") for line in outcome.text)


async def test_no_version_in_common_is_one_line_with_the_offer_still_shown() -> None:
    async with sandbox(ocpi_versions=("2.1.1",)) as (base, _):
        code, out, err = await run_cli(
            "discover", "--url", f"{base}/ocpi/versions", "--token", TOKEN,
            "--ocpi-version", "2.2.1", "--output", "json",
        )  # fmt: skip
    assert code == 3
    report = json.loads(out)
    assert [v["version"] for v in report["versions"]] == ["2.1.1"]
    assert (report["chosen"], report["endpoints"], report["error_kind"]) == (
        None,
        [],
        "version_not_offered",
    )
    assert err.splitlines() == [
        "ocpi-puller: version_not_offered: partner does not offer OCPI 2.2.1 (offers: 2.1.1)"
    ]


async def test_a_refused_token_a_module_url_and_no_token_are_one_line_each() -> None:
    async with sandbox() as (base, _):
        refused = await run_cli("discover", "--url", f"{base}/ocpi/versions", "--token", "nope")
        module_url = await run_cli(
            "discover", "--url", f"{base}/ocpi/emsp/2.2.1/tokens", "--token", TOKEN
        )
        no_token = await run_cli("discover", "--url", f"{base}/ocpi/versions", "--output", "json")
    assert refused[0] == 3
    assert refused[2].splitlines()[-1].startswith("ocpi-puller: partner_auth: partner refused")
    assert "nope" not in refused[1] + refused[2]
    assert module_url[0] == 2
    assert "not a module endpoint" in module_url[2]
    assert no_token[0] == 2
    assert json.loads(no_token[1]) == {
        "command": "discover",
        "exit_code": 2,
        "error_kind": "config",
        "error": "--token (or OCPI_PULLER_TOKEN) is required",
    }
