"""Partner TLS: verified by default, a private CA via --ca-bundle, opting out is explicit and loud.

The sandbox serves HTTPS with certificates from a throwaway CA (trustme), over real sockets.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from tests.support import TOKEN, pull, sandbox


@dataclass(frozen=True)
class Pki:
    ca: Path  # the CA certificate a client would trust
    server: Path  # key + chain for 127.0.0.1
    wrong_host: Path  # key + chain for another name


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    paths = Pki(folder / "ca.pem", folder / "server.pem", folder / "wrong-host.pem")
    ca.cert_pem.write_to_path(str(paths.ca))
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(paths.server))
    ca.issue_cert("partner.example").private_key_and_cert_chain_pem.write_to_path(
        str(paths.wrong_host)
    )
    return paths


async def test_an_untrusted_certificate_fails_fast_and_says_what_to_do(
    bootstrap: str, prefix: str, pki: Pki
) -> None:
    async with sandbox(sizes={"tokens": 10}, tls_cert=pki.server) as (base, state):
        assert base.startswith("https://")
        result = await pull(base, bootstrap, prefix)
        served = sum(state.stats.requests.values())
    summary = result.summaries[0]
    assert result.exit_code == 4
    assert summary.error_kind == "partner_tls"
    assert summary.error is not None
    assert "--ca-bundle" in summary.error
    assert "unable to get local issuer certificate" in summary.error
    assert summary.retries == 0  # verification fails the same way every time: no retry loop
    assert served == 0  # nothing, not even the token, was sent over the untrusted connection
    assert not summary.complete


async def test_a_certificate_for_another_host_is_refused(
    bootstrap: str, prefix: str, pki: Pki
) -> None:
    async with sandbox(sizes={"tokens": 10}, tls_cert=pki.wrong_host) as (base, _):
        result = await pull(base, bootstrap, prefix, ca_bundle=pki.ca)
    summary = result.summaries[0]
    assert result.exit_code == 4
    assert summary.error_kind == "partner_tls"
    assert "mismatch" in (summary.error or "").lower()


async def test_a_ca_bundle_makes_the_partner_trusted(
    bootstrap: str, prefix: str, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    async with sandbox(sizes={"tokens": 2_500}, max_limit=500, tls_cert=pki.server) as (base, _):
        with caplog.at_level(logging.WARNING):
            result = await pull(base, bootstrap, prefix, ca_bundle=pki.ca)
    assert result.exit_code == 0, result.summaries[0]
    assert result.summaries[0].objects_emitted == 2_500
    assert not [r for r in caplog.records if "TLS" in r.getMessage()]


async def test_skipping_verification_works_and_is_logged_as_a_warning(
    bootstrap: str, prefix: str, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    async with sandbox(sizes={"tokens": 300}, tls_cert=pki.wrong_host) as (base, _):
        with caplog.at_level(logging.WARNING):
            result = await pull(base, bootstrap, prefix, insecure_skip_tls_verify=True)
    assert result.exit_code == 0, result.summaries[0]
    assert result.summaries[0].objects_emitted == 300
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("verification is DISABLED" in r.getMessage() for r in warnings)


def assert_one_line(stderr: str) -> None:
    assert "Traceback" not in stderr
    assert stderr.count("\n") == 1, stderr


async def run_cli(*args: str, token: str = TOKEN) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "producer.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "OCPI_PULLER_TOKEN": token},
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_command_line_reports_tls_failures_in_one_line(
    bootstrap: str, prefix: str, pki: Pki, tmp_path: Path
) -> None:
    async with sandbox(sizes={"tokens": 10}, tls_cert=pki.server) as (base, _):
        common = ["pull", "--url", f"{base}/ocpi/versions", "--module", "tokens",
                  "--bootstrap-servers", bootstrap, "--topic-prefix", prefix,
                  "--no-progress-bar"]  # fmt: skip
        code, _, err = await run_cli(*common)
        assert code == 4
        assert_one_line(err)
        assert err.startswith("ocpi-puller: ")
        assert "partner_tls" in err
        assert "--ca-bundle" in err

        code, _, err = await run_cli(*common, "--ca-bundle", str(pki.ca), "--output", "json")
        assert code == 0, err

        not_pem = tmp_path / "not-a-ca.pem"
        not_pem.write_text("not a certificate\n")
        for bundle in (not_pem, tmp_path / "missing.pem"):
            code, _, err = await run_cli(*common, "--ca-bundle", str(bundle))
            assert code == 2, err
            assert_one_line(err)
            assert "cannot load CA certificates" in err


async def test_the_sandbox_command_serves_https(pki: Pki) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "producer.cli", "sandbox", "--port", "0", "--tokens", "5",
        "--tls-cert", str(pki.server),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        assert "at https://127.0.0.1:" in line
    finally:
        process.terminate()
        await process.wait()
    code, _, err = await run_cli("sandbox", "--port", "0", "--tls-cert", str(pki.ca))
    assert code == 2  # a certificate without its key
    assert_one_line(err)
