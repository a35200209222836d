"""Settings and the partners file (producer/config.py): sources, precedence, validation, secrets.

Flags (keyword arguments, as the CLI passes them) override `OCPI_PULLER_*` variables, which
override defaults; Kafka and Kubernetes variables are understood too. Every mistake surfaces as
a one-line `ConfigError` naming the field, and the token never shows in any rendering.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from producer import partners
from producer.config import (
    PartnerOptions,
    PullSettings,
    PullTarget,
    default_partner_name,
)
from producer.errors import ConfigError
from producer.partners import load_partners_file
from producer.setting_names import describe_validation_error, unknown_env_warnings

SECRET = "s3cr3t-T0KEN-4cb1b3d2"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # conftest clears OCPI_PULLER_*; these are read too, and a developer's shell may have them.
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "JOB_COMPLETION_INDEX"):
        monkeypatch.delenv(name, raising=False)


NOT_A_MAPPING = "the file (a mapping of defaults and partners): Input should be a valid dictionary"
BAD_URL = "--url / OCPI_PULLER_URL: must be an http(s) URL"


def error_of(**values: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        PullSettings(**values)
    return describe_validation_error(caught.value)


# --- sources and precedence ------------------------------------------------------------------


def test_defaults() -> None:
    settings = PullSettings()
    assert settings.url is None
    assert settings.token is None
    assert settings.partners_file is None
    assert settings.bootstrap_servers == "localhost:9092"
    assert (settings.shard_index, settings.shard_count) == (0, 1)
    assert settings.topic_prefix == "ocpi"
    assert settings.options == PartnerOptions()


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        ("OCPI_PULLER_URL", "https://p/ocpi/versions", "url", "https://p/ocpi/versions"),
        ("OCPI_PULLER_MODULE", "cdrs", "module", "cdrs"),
        ("OCPI_PULLER_OCPI_VERSION", "2.1.1", "ocpi_version", "2.1.1"),
        ("OCPI_PULLER_CONCURRENCY", "7", "concurrency", 7),
        ("OCPI_PULLER_RATE_LIMIT", "2.5", "rate_limit", 2.5),
        ("OCPI_PULLER_PROBE_PAST_END", "true", "probe_past_end", "on"),
        ("OCPI_PULLER_PROBE_PAST_END", "off", "probe_past_end", "off"),
        ("OCPI_PULLER_TOKEN_ENCODING", "plain", "token_encoding", "plain"),
        ("OCPI_PULLER_PARTNERS", "/etc/partners.yaml", "partners_file", Path("/etc/partners.yaml")),
        (
            "OCPI_PULLER_BOOTSTRAP_SERVERS",
            "k1:9092,k2:9092",
            "bootstrap_servers",
            "k1:9092,k2:9092",
        ),
        ("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092", "bootstrap_servers", "kafka:9092"),
        ("OCPI_PULLER_TOPIC_PREFIX", "roaming.ocpi", "topic_prefix", "roaming.ocpi"),
        ("OCPI_PULLER_OUTPUT", "json", "output", "json"),
        ("OCPI_PULLER_DELIVERY", "exactly-once", "delivery", "exactly-once"),
        ("OCPI_PULLER_TRANSACTION_PAGES", "50", "transaction_pages", 50),
        ("OCPI_PULLER_TRANSACTION_MS", "500", "transaction_ms", 500),
        ("OCPI_PULLER_MAX_BYTES_IN_FLIGHT", "1048576", "max_bytes_in_flight", 1_048_576),
        ("ocpi_puller_concurrency", "9", "concurrency", 9),  # case-insensitive
    ],
)
def test_environment_is_read(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, field: str, expected: Any
) -> None:
    monkeypatch.setenv(variable, value)
    assert getattr(PullSettings(), field) == expected


def test_token_from_the_environment_is_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCPI_PULLER_TOKEN", SECRET)
    token = PullSettings().token
    assert isinstance(token, SecretStr)
    assert token.get_secret_value() == SECRET


@pytest.mark.parametrize(
    ("variable", "env_value", "field", "flag_value"),
    [
        ("OCPI_PULLER_CONCURRENCY", "2", "concurrency", 8),
        ("OCPI_PULLER_URL", "https://env/ocpi", "url", "https://flag/ocpi"),
        ("OCPI_PULLER_MODULE", "cdrs", "module", "tokens"),
        ("OCPI_PULLER_PROBE_PAST_END", "true", "probe_past_end", "off"),
        ("OCPI_PULLER_BOOTSTRAP_SERVERS", "env:9092", "bootstrap_servers", "flag:9092"),
        ("KAFKA_BOOTSTRAP_SERVERS", "env:9092", "bootstrap_servers", "flag:9092"),
        ("OCPI_PULLER_PARTNERS", "/env.yaml", "partners_file", Path("/flag.yaml")),
    ],
)
def test_flags_override_the_environment(
    monkeypatch: pytest.MonkeyPatch, variable: str, env_value: str, field: str, flag_value: Any
) -> None:
    monkeypatch.setenv(variable, env_value)
    assert getattr(PullSettings(**{field: flag_value}), field) == flag_value


def test_our_bootstrap_variable_wins_over_kafkas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    monkeypatch.setenv("OCPI_PULLER_BOOTSTRAP_SERVERS", "ours:9092")
    assert PullSettings().bootstrap_servers == "ours:9092"


@pytest.mark.parametrize(
    ("environment", "given", "shown"),
    [
        ({}, {}, True),
        ({"OCPI_PULLER_NO_PROGRESS_BAR": "true"}, {}, False),  # README's name
        ({"OCPI_PULLER_NO_PROGRESS_BAR": "false"}, {}, True),
        ({"OCPI_PULLER_PROGRESS_BAR": "false"}, {}, False),  # the name read before, still read
        ({"OCPI_PULLER_PROGRESS_BAR": "false", "OCPI_PULLER_NO_PROGRESS_BAR": "false"}, {}, True),
        ({}, {"no_progress_bar": True}, False),  # the flag
        ({"OCPI_PULLER_NO_PROGRESS_BAR": "false"}, {"no_progress_bar": True}, False),
    ],
)
def test_the_progress_bar_is_switched_off_by_readmes_variable_or_the_older_one(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], given: Any, shown: bool
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert PullSettings(**given).shows_progress_bar is shown


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({"OCPI_PULLER_CONCURRENCY": "4", "PATH": "/bin", "KAFKA_BOOTSTRAP_SERVERS": "k"}, []),
        ({"OCPI_PULLER_LOG_LEVEL": "debug", "OCPI_PULLER_PROGRESS_BAR": "false"}, []),
        (
            {"OCPI_PULLER_CONCURENCY": "4"},
            ["OCPI_PULLER_CONCURENCY is not a setting of the puller and is ignored; did you mean "
             "OCPI_PULLER_CONCURRENCY?"],
        ),
        (
            {"OCPI_PULLER_XYZZY": "1", "OCPI_PULLER_URL": "https://p"},
            ["OCPI_PULLER_XYZZY is not a setting of the puller and is ignored"],
        ),
    ],
)  # fmt: skip
def test_an_unknown_puller_variable_is_one_warning_line(
    environment: dict[str, str], expected: list[str]
) -> None:
    assert unknown_env_warnings(environment) == expected


def test_indexed_job_sets_the_shard_index(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "2")
    monkeypatch.setenv("OCPI_PULLER_SHARD_COUNT", "3")
    monkeypatch.setenv("OCPI_PULLER_PULL_ID", "nightly-1")
    assert PullSettings().shard_index == 2
    monkeypatch.setenv("OCPI_PULLER_SHARD_INDEX", "1")
    assert PullSettings().shard_index == 1
    assert PullSettings(shard_index=0).shard_index == 0


def test_job_completion_index_beyond_the_shard_count_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "3")
    monkeypatch.setenv("OCPI_PULLER_SHARD_COUNT", "3")
    with pytest.raises(ValidationError) as caught:
        PullSettings()
    assert "shard index 3 is not below the shard count" in describe_validation_error(caught.value)


@pytest.mark.parametrize(
    ("variable", "field"),
    [
        ("SHARD_INDEX", "shard_index"),
        ("BOOTSTRAP_SERVERS", "bootstrap_servers"),
        ("PARTNERS_FILE", "partners_file"),
        ("CONCURRENCY", "concurrency"),
        ("URL", "url"),
        ("TOKEN", "token"),
    ],
)
def test_unprefixed_variables_are_not_read(
    monkeypatch: pytest.MonkeyPatch, variable: str, field: str
) -> None:
    # Regression: field names among the aliases made SHARD_INDEX, BOOTSTRAP_SERVERS and
    # PARTNERS_FILE settings; any container env with those names reconfigured the pull.
    monkeypatch.setenv("OCPI_PULLER_SHARD_COUNT", "5")
    monkeypatch.setenv("OCPI_PULLER_PULL_ID", "nightly-1")
    monkeypatch.setenv(variable, "1")
    assert getattr(PullSettings(), field) == PullSettings.model_fields[field].default


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (datetime(2024, 1, 1, 12, 0), datetime(2024, 1, 1, 12, 0, tzinfo=UTC)),
        ("2024-01-01T12:00:00", datetime(2024, 1, 1, 12, 0, tzinfo=UTC)),
        ("2024-01-01T12:00:00Z", datetime(2024, 1, 1, 12, 0, tzinfo=UTC)),
        ("2024-01-01T14:00:00+02:00", datetime(2024, 1, 1, 12, 0, tzinfo=UTC)),
    ],
)
def test_dates_become_utc(given: Any, expected: datetime) -> None:
    settings = PullSettings(date_from=given)
    assert settings.date_from == expected
    assert settings.date_from is not None
    assert settings.date_from.utcoffset() is not None
    assert settings.date_from.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_options_collects_the_per_partner_fields() -> None:
    settings = PullSettings(concurrency=3, fanout=2, rate_limit=1.5, skip_unchanged=True)
    assert settings.options == PartnerOptions(
        concurrency=3, fanout=2, rate_limit=1.5, skip_unchanged=True
    )


def test_settings_are_frozen() -> None:
    settings = PullSettings()
    with pytest.raises(ValidationError):
        settings.concurrency = 9  # type: ignore[misc]


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"concurrency": 0}, "concurrency: must be auto or a whole number from 1 to 256"),
        ({"concurrency": 257}, "concurrency: must be auto or a whole number from 1 to 256"),
        ({"concurrency": "many"}, "concurrency: must be auto or a whole number"),
        ({"fanout": 33}, "fanout: Input should be less than or equal to 32"),
        ({"limit": 0}, "limit: Input should be greater than 0"),
        ({"rate_limit": 0}, "rate_limit: Input should be greater than 0"),
        ({"max_attempts": 51}, "max_attempts: Input should be less than or equal to 50"),
        ({"request_timeout_s": -1}, "request_timeout_s: Input should be greater than 0"),
        ({"token_encoding": "hex"}, "token_encoding: Input should be 'base64', 'plain' or 'auto'"),
        ({"module": "chargers"}, "module: Input should be"),
        ({"ocpi_version": "2.0"}, "ocpi_version: Input should be '2.1.1', '2.2.1' or '2.3.0'"),
        ({"output": "xml"}, "output: Input should be 'text' or 'json'"),
        ({"topic_prefix": "bad prefix"}, "topic_prefix: may only contain"),
        ({"topic_prefix": ""}, "topic_prefix: may only contain"),
        ({"pull_id": "-starts-with-dash"}, "pull_id: 1-63 letters"),
        ({"pull_id": "x" * 64}, "pull_id: 1-63 letters"),
        ({"pull_id": "has space"}, "pull_id: 1-63 letters"),
        ({"shard_count": 0}, "shard_count: Input should be greater than or equal to 1"),
        ({"shard_index": -1}, "shard_index: Input should be greater than or equal to 0"),
        ({"shard_index": 1}, "shard index 1 is not below the shard count"),
        (
            {"date_from": "2024-02-01T00:00:00Z", "date_to": "2024-01-01T00:00:00Z"},
            "date_from must be before date_to",
        ),
        (
            {"date_from": "2024-01-01T00:00:00Z", "date_to": "2024-01-01T00:00:00Z"},
            "date_from must be before date_to",
        ),
        (
            {"incremental": True, "date_from": "2024-01-01T00:00:00Z"},
            "--incremental computes date_from itself",
        ),
        ({"date_from": "yesterday"}, "date_from: Input should be a valid datetime"),
    ],
)
def test_invalid_settings_are_described_field_by_field(
    values: dict[str, Any], expected: str
) -> None:
    message = error_of(**values)
    assert expected in message
    assert "\n" not in message


def test_several_errors_are_joined_on_one_line() -> None:
    message = error_of(concurrency=0, fanout=0)
    assert message.count("; ") == 1
    assert message.startswith(("concurrency: ", "fanout: "))


def test_invalid_environment_is_a_validation_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCPI_PULLER_CONCURRENCY", "lots")
    assert "concurrency: must be auto or a whole number" in error_of()


# --- targets() -------------------------------------------------------------------------------


def test_one_target_from_flags() -> None:
    settings = PullSettings(
        url="https://partner.example.com/ocpi/versions",
        token=SECRET,
        module="locations",
        ocpi_version="2.2.1",
        partner_country="NL",
        partner_party="ABC",
        concurrency=2,
    )
    (target,) = partners.targets(settings)
    assert target.partner == "NL-ABC"
    assert target.url == "https://partner.example.com/ocpi/versions"
    assert target.token.get_secret_value() == SECRET
    assert (target.module, target.ocpi_version) == ("locations", "2.2.1")
    assert target.options.concurrency == 2


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"url": "https://partner.example.com/ocpi"}, "partner.example.com"),
        ({"url": "https://partner.example.com:8443/ocpi"}, "partner.example.com-8443"),
        ({"url": "http://[::1]:8080/ocpi"}, "1-8080"),
        # User info may carry a password: it must not become part of keys and events.
        ({"url": "https://user:pw@partner.example.com/ocpi"}, "partner.example.com"),
        ({"url": "https://"}, "partner"),
        ({"url": "https://x", "partner_country": "nl", "partner_party": "abc"}, "NL-ABC"),
        ({"url": "https://x", "partner_country": "nl"}, "x"),
        ({"url": "https://" + "h" * 100}, "h" * 63),
    ],
)
def test_default_partner_name(values: dict[str, Any], expected: str) -> None:
    assert default_partner_name(PullSettings(**values)) == expected


def test_explicit_partner_name_wins() -> None:
    settings = PullSettings(url="https://p/ocpi", token=SECRET, partner="acme")
    assert partners.targets(settings)[0].partner == "acme"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, "--url (or OCPI_PULLER_URL) is required"),
        ({"url": "https://p/ocpi"}, "--token (or OCPI_PULLER_TOKEN) is required"),
        (
            {"url": "https://p/ocpi", "token": SECRET, "partners_file": "/p.yaml"},
            "give either --partners or --url, not both",
        ),
        ({"url": "ftp://p/ocpi", "token": SECRET}, BAD_URL),
        ({"url": "p/ocpi", "token": SECRET}, BAD_URL),
        (
            {"url": "https://p/ocpi", "token": SECRET, "partner_country": "NLD"},
            "--partner-country / OCPI_PULLER_PARTNER_COUNTRY: String should have at most 2",
        ),
        (
            {"url": "https://p/ocpi", "token": SECRET, "partner_party": "AB"},
            "--partner-party / OCPI_PULLER_PARTNER_PARTY: String should have at least 3",
        ),
    ],
)
def test_targets_refuses_with_a_config_error(values: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        partners.targets(PullSettings(**values))
    assert expected in str(caught.value)
    assert SECRET not in str(caught.value)
    assert caught.value.exit_code == 2


# --- the token never shows -------------------------------------------------------------------


def test_token_never_in_any_rendering_of_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCPI_PULLER_TOKEN", SECRET)
    settings = PullSettings(url="https://p/ocpi", module="cdrs")
    targets = partners.targets(settings)
    renderings = [
        repr(settings),
        str(settings),
        settings.model_dump_json(),
        str(settings.model_dump(mode="json")),
        repr(settings.token),
        str(settings.token),
        f"{settings.token}",
        repr(targets),
        str(targets[0]),
        targets[0].model_dump_json(),
        str(targets[0].model_dump(mode="json")),
    ]
    for text in renderings:
        assert SECRET not in text
    assert "**********" in settings.model_dump_json()


# --- partners file ---------------------------------------------------------------------------


def write(tmp_path: Path, text: str, name: str = "partners.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def partners_yaml(body: str = "", defaults: str = "") -> str:
    head = f"defaults:\n{defaults}" if defaults else ""
    return head + "partners:\n" + body


ONE_PARTNER = """\
- name: acme
  url: https://acme.example.com/ocpi/versions
  token_env: ACME_TOKEN
  modules: [locations]
"""


@pytest.fixture
def acme_token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ACME_TOKEN", f"  {SECRET}\n")
    return SECRET


def test_partners_file_with_defaults_and_per_partner_options(
    tmp_path: Path, acme_token: str
) -> None:
    token_file = write(tmp_path, f"{SECRET}-b\n", name="b.token")
    path = write(
        tmp_path,
        partners_yaml(
            defaults="  concurrency: 3\n  fanout: 2\n  token_encoding: plain\n",
            body=f"""\
- name: acme
  url: https://acme.example.com/ocpi/versions
  token_env: ACME_TOKEN
  modules: [locations, tariffs]
  ocpi_version: "2.2.1"
  country_code: NL
  party_id: ACM
  options:
    concurrency: 5
    rate_limit: 2.5
- name: beta
  url: http://beta.example.com/ocpi/versions
  token_file: {token_file}
  modules: [cdrs]
""",
        ),
    )
    base = PartnerOptions(window_size=500, concurrency=1)
    targets = load_partners_file(path, base)
    assert [(t.partner, t.module) for t in targets] == [
        ("acme", "locations"),
        ("acme", "tariffs"),
        ("beta", "cdrs"),
    ]
    acme, _, beta = targets
    # partner options > file defaults > the run's settings > built-in defaults
    assert acme.options == PartnerOptions(
        window_size=500, concurrency=5, fanout=2, token_encoding="plain", rate_limit=2.5
    )
    assert beta.options == PartnerOptions(
        window_size=500, concurrency=3, fanout=2, token_encoding="plain"
    )
    assert acme.token.get_secret_value() == SECRET  # stripped
    assert beta.token.get_secret_value() == f"{SECRET}-b"
    assert (acme.ocpi_version, acme.partner_country, acme.partner_party) == ("2.2.1", "NL", "ACM")
    assert beta.ocpi_version is None
    assert beta.url == "http://beta.example.com/ocpi/versions"
    for target in targets:
        assert isinstance(target, PullTarget)
        assert SECRET not in repr(target)
        assert SECRET not in target.model_dump_json()


def test_partners_file_through_settings(
    tmp_path: Path, acme_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, partners_yaml(ONE_PARTNER))
    monkeypatch.setenv("OCPI_PULLER_PARTNERS", str(path))
    (target,) = partners.targets(PullSettings(concurrency=6))
    assert target.partner == "acme"
    assert target.options.concurrency == 6


def test_same_module_for_two_partners_is_fine(tmp_path: Path, acme_token: str) -> None:
    second = ONE_PARTNER.replace("acme", "other")
    targets = load_partners_file(
        write(tmp_path, partners_yaml(ONE_PARTNER + second)), PartnerOptions()
    )
    assert [(t.partner, t.module) for t in targets] == [
        ("acme", "locations"),
        ("other", "locations"),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # YAML and shape
        ("partners: [\n", "is not valid YAML"),
        ("partners:\n  - name: a\n   url: x\n", "is not valid YAML"),
        ("\t- tab", "is not valid YAML"),
        ("", NOT_A_MAPPING),
        ("- a\n- b\n", NOT_A_MAPPING),
        ("just a string", NOT_A_MAPPING),
        ("partners: []\n", "partners: List should have at least 1 item"),
        ("defaults: {}\n", "partners: Field required"),
        ("defaults: [1]\n" + partners_yaml(ONE_PARTNER), "defaults: Input should be a valid"),
        # unknown keys, at every level
        ("partner:\n" + ONE_PARTNER, "partner: Extra inputs are not permitted"),
        (partners_yaml(ONE_PARTNER + "  colour: blue\n"), "colour: Extra inputs are not"),
        (
            partners_yaml(ONE_PARTNER + "  options:\n    concurency: 8\n"),
            "concurency: Extra inputs are not permitted",
        ),
        (
            partners_yaml(ONE_PARTNER, defaults="  fan_out: 2\n"),
            "fan_out: Extra inputs are not permitted",
        ),
        # values
        (
            partners_yaml(ONE_PARTNER + "  options:\n    concurrency: 0\n"),
            "concurrency: must be auto",
        ),
        (partners_yaml(ONE_PARTNER, defaults="  fanout: lots\n"), "fanout: Input should be"),
        (partners_yaml(ONE_PARTNER.replace("[locations]", "[]")), "modules: List should have"),
        (partners_yaml(ONE_PARTNER.replace("[locations]", "[evses]")), "modules.0: Input"),
        (partners_yaml(ONE_PARTNER.replace("name: acme", "name: -acme")), ": name: 1-63 letters"),
        (partners_yaml(ONE_PARTNER.replace("name: acme", "name: a b")), ": name: 1-63 letters"),
        (partners_yaml(ONE_PARTNER.replace("https://", "ftp://")), "partner acme: url: must be"),
        (partners_yaml(ONE_PARTNER + "  ocpi_version: '2.0'\n"), "ocpi_version: Input"),
        (partners_yaml(ONE_PARTNER + "  country_code: NLD\n"), "at most 2 characters"),
        (partners_yaml(ONE_PARTNER + "  party_id: AB\n"), "at least 3 characters"),
        (
            partners_yaml(
                ONE_PARTNER.replace("  url: https://acme.example.com/ocpi/versions\n", "")
            ),
            "url: Field required",
        ),
        # tokens and modules
        (
            partners_yaml(ONE_PARTNER.replace("ACME_TOKEN", "MISSING_TOKEN_VAR")),
            "partner acme: token_env: variable MISSING_TOKEN_VAR is empty",
        ),
        (
            partners_yaml(ONE_PARTNER.replace("  token_env: ACME_TOKEN\n", "")),
            "partner acme: give exactly one of token_env or token_file",
        ),
        (
            partners_yaml(ONE_PARTNER + "  token_file: /x.token\n"),
            "partner acme: give exactly one of token_env or token_file",
        ),
        (
            partners_yaml(ONE_PARTNER.replace("token_env: ACME_TOKEN", "token_file: /no/such")),
            "partner acme: token_file: cannot read /no/such: No such file or directory",
        ),
        (
            partners_yaml(ONE_PARTNER.replace("[locations]", "[locations, cdrs, locations]")),
            "partner acme lists module locations twice",
        ),
        (partners_yaml(ONE_PARTNER + ONE_PARTNER), "partner acme lists module locations twice"),
    ],
)
def test_bad_partners_files_are_config_errors(
    tmp_path: Path, acme_token: str, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_partners_file(path, PartnerOptions())
    assert expected in str(caught.value)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize("value", ["", "   ", "\n\t"])
def test_blank_token_variable_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    # Regression for whitespace: it used to pass the check and become an empty token.
    monkeypatch.setenv("ACME_TOKEN", value)
    with pytest.raises(ConfigError, match="variable ACME_TOKEN is empty"):
        load_partners_file(write(tmp_path, partners_yaml(ONE_PARTNER)), PartnerOptions())


@pytest.mark.parametrize("content", ["", "  \n"])
def test_blank_token_file_is_refused(tmp_path: Path, content: str) -> None:
    token_file = write(tmp_path, content, name="acme.token")
    text = ONE_PARTNER.replace("token_env: ACME_TOKEN", f"token_file: {token_file}")
    with pytest.raises(ConfigError, match="is empty"):
        load_partners_file(write(tmp_path, partners_yaml(text)), PartnerOptions())


def test_missing_partners_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read partners file .*No such file"):
        load_partners_file(tmp_path / "absent.yaml", PartnerOptions())


def test_partners_file_that_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read partners file"):
        load_partners_file(tmp_path, PartnerOptions())


def test_partners_file_that_is_not_utf8(tmp_path: Path) -> None:
    # Regression: the UnicodeDecodeError escaped as a traceback instead of exit code 2.
    path = tmp_path / "partners.yaml"
    path.write_bytes(b"partners:\n- name: caf\xe9\n")
    with pytest.raises(ConfigError, match="is not UTF-8"):
        load_partners_file(path, PartnerOptions())


def test_token_file_that_is_not_utf8(tmp_path: Path) -> None:
    token_file = tmp_path / "acme.token"
    token_file.write_bytes(b"\xffs3cr3t")
    text = ONE_PARTNER.replace("token_env: ACME_TOKEN", f"token_file: {token_file}")
    with pytest.raises(ConfigError) as caught:
        load_partners_file(write(tmp_path, partners_yaml(text)), PartnerOptions())
    assert "is not UTF-8" in str(caught.value)
    assert "s3cr3t" not in str(caught.value)
    assert "0xff" not in str(caught.value)


def test_module_picks_that_module_of_every_partner_in_the_file(
    tmp_path: Path, acme_token: str
) -> None:
    text = ONE_PARTNER.replace("modules: [locations]", "modules: [locations, tokens]")
    path = write(tmp_path, partners_yaml(text))
    (target,) = partners.targets(PullSettings(partners_file=path, module="tokens"))
    assert (target.partner, target.module) == ("acme", "tokens")
    with pytest.raises(ConfigError) as caught:
        partners.targets(PullSettings(partners_file=path, module="cdrs"))
    assert "--module cdrs: the partners file lists it for no partner" in str(caught.value)


def test_a_token_file_with_a_line_break_inside_is_refused_unseen(tmp_path: Path) -> None:
    token_file = tmp_path / "acme.token"
    token_file.write_text("s3cr3t\nX-Other: 1\n")
    text = ONE_PARTNER.replace("token_env: ACME_TOKEN", f"token_file: {token_file}")
    with pytest.raises(ConfigError) as caught:
        partners.targets(PullSettings(partners_file=write(tmp_path, partners_yaml(text))))
    assert "control character" in str(caught.value)
    assert "s3cr3t" not in str(caught.value)


def test_settings_error_names_the_partners_file(tmp_path: Path, acme_token: str) -> None:
    path = write(tmp_path, partners_yaml(ONE_PARTNER + "  options: {concurrency: 0}\n"))
    with pytest.raises(ConfigError) as caught:
        partners.targets(PullSettings(partners_file=path))
    assert str(caught.value).startswith(f"partners file {path}: ")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"shard_count": 2}, "a sharded pull needs one --pull-id shared by every shard"),
        ({"shard_count": 2, "shard_index": 1}, "a sharded pull needs one --pull-id"),
        ({"resume": True}, "--resume needs the --pull-id"),
        ({"date_from": "2999-01-01T00:00:00Z"}, "is not in the past"),
    ],
)
def test_settings_that_cannot_work_are_refused_before_any_connection(
    values: dict[str, Any], expected: str
) -> None:
    assert expected in error_of(**values)


def test_a_token_file_is_read_relative_to_the_partners_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / "acme.token").write_text("secret-from-file\n")
    partners_file = folder / "partners.yaml"
    partners_file.write_text(
        "partners:\n  - name: acme\n    url: https://acme.example.com/ocpi/versions\n"
        "    token_file: acme.token\n    modules: locations\n"
    )
    monkeypatch.chdir(tmp_path)  # not the file's folder
    (target,) = load_partners_file(partners_file, PartnerOptions())
    assert target.token.get_secret_value() == "secret-from-file"
    assert target.module == "locations"  # a one-item `modules: locations`


def test_delivery_flags_reach_the_settings() -> None:
    from producer.cli import build_parser, settings_from_args

    default = settings_from_args(build_parser().parse_args(["pull", "--url", "https://p/x"]))
    assert (default.delivery, default.transaction_pages, default.transaction_ms) == (
        "at-least-once",
        20,
        2000,
    )
    args = build_parser().parse_args(
        ["pull", "--delivery", "exactly-once", "--transaction-pages", "5", "--transaction-ms", "9"]
    )
    given = settings_from_args(args)
    assert (given.delivery, given.transaction_pages, given.transaction_ms) == ("exactly-once", 5, 9)


def test_an_unknown_delivery_is_a_usage_error() -> None:
    from producer.cli import main

    assert main(["pull", "--delivery", "twice"]) == 2  # one line, no traceback
