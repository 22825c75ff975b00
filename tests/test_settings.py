"""Settings: defaults, under the TOML file, under SLUICEGATE_* variables, under keywords; one
clear error for every bad input; and the TLS configuration the client connects with."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from temporalio.service import TLSConfig

from sluicegate.settings import CONFIG_ENV, SettingsError, load_settings
from workers.client import tls_config

CA = b"-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n"
CERT = b"-----BEGIN CERTIFICATE-----\nclient\n-----END CERTIFICATE-----\n"
KEY = b"-----BEGIN PRIVATE KEY-----\nkey\n-----END PRIVATE KEY-----\n"


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No SLUICEGATE_* variable of the machine, and a HOME without a config file."""
    for name in list(os.environ):
        if name.startswith("SLUICEGATE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))


def config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str) -> Path:
    """A TOML file holding `text`, named by SLUICEGATE_CONFIG."""
    path = tmp_path / "sluicegate.toml"
    path.write_text(text)
    monkeypatch.setenv(CONFIG_ENV, str(path))
    return path


def pem(tmp_path: Path, name: str, payload: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(payload)
    return path


def error_of(**overrides: object) -> str:
    with pytest.raises(SettingsError) as caught:
        load_settings(**overrides)
    return str(caught.value)


# --- where settings come from ------------------------------------------------------------


def test_defaults() -> None:
    settings = load_settings()

    assert settings.temporal_address == "127.0.0.1:7233"
    assert settings.namespace == "default"
    assert settings.task_queue == "sluicegate"
    assert settings.api_key is None
    assert settings.tls is False
    assert (settings.tls_cert, settings.tls_key, settings.tls_ca) == (None, None, None)
    assert settings.tls_server_name is None
    assert settings.ui_url == "http://localhost:8233"
    assert settings.max_watched_deployments == 500
    assert settings.uses_tls is False
    assert settings.metrics_address is None  # no metrics endpoint unless asked


def test_default_config_file_is_under_home(tmp_path: Path) -> None:
    path = tmp_path / ".config" / "sluicegate" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text('namespace = "from-home"\n')

    assert load_settings().namespace == "from-home"


def test_toml_file_named_by_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config_file(
        monkeypatch,
        tmp_path,
        'temporal_address = "temporal.example:7233"\n'
        'namespace = "prod"\n'
        "max_watched_deployments = 7\n",
    )

    settings = load_settings()

    assert settings.temporal_address == "temporal.example:7233"
    assert settings.namespace == "prod"
    assert settings.max_watched_deployments == 7
    assert settings.task_queue == "sluicegate"  # not in the file: the default


def test_env_overrides_the_toml_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config_file(monkeypatch, tmp_path, 'namespace = "from-toml"\ntask_queue = "tq-toml"\n')
    monkeypatch.setenv("SLUICEGATE_NAMESPACE", "from-env")
    monkeypatch.setenv("SLUICEGATE_MAX_WATCHED_DEPLOYMENTS", "3")

    settings = load_settings()

    assert settings.namespace == "from-env"
    assert settings.max_watched_deployments == 3
    assert settings.task_queue == "tq-toml"


def test_keyword_overrides_beat_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config_file(monkeypatch, tmp_path, 'namespace = "from-toml"\n')
    monkeypatch.setenv("SLUICEGATE_NAMESPACE", "from-env")
    monkeypatch.setenv("SLUICEGATE_TASK_QUEUE", "tq-env")

    settings = load_settings(namespace="from-keyword")

    assert settings.namespace == "from-keyword"
    assert settings.task_queue == "tq-env"


def test_none_overrides_are_ignored(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config_file(monkeypatch, tmp_path, 'task_queue = "tq-toml"\n')
    monkeypatch.setenv("SLUICEGATE_NAMESPACE", "from-env")

    settings = load_settings(namespace=None, task_queue=None, temporal_address=None)

    assert settings.namespace == "from-env"
    assert settings.task_queue == "tq-toml"
    assert settings.temporal_address == "127.0.0.1:7233"


# --- bad settings ------------------------------------------------------------------------


def test_unknown_key_in_the_toml_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = config_file(monkeypatch, tmp_path, 'namespace = "prod"\nnamepsace = "typo"\n')

    message = error_of()

    assert "unknown setting 'namepsace'" in message
    assert str(path) in message


def test_malformed_toml_names_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = config_file(monkeypatch, tmp_path, 'namespace = "unterminated\n')

    message = error_of()

    assert message.startswith(f"cannot read settings file {path}")


def test_config_env_naming_a_missing_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    monkeypatch.setenv(CONFIG_ENV, str(missing))

    assert error_of() == f"{CONFIG_ENV}={missing}: no such file"


def test_bad_int_in_env_names_the_setting_and_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLUICEGATE_MAX_WATCHED_DEPLOYMENTS", "abc")

    message = error_of()

    assert "max_watched_deployments (env SLUICEGATE_MAX_WATCHED_DEPLOYMENTS)" in message
    assert "integer" in message


def test_out_of_range_keyword_is_an_error() -> None:
    assert "max_watched_deployments" in error_of(max_watched_deployments=0)


@pytest.mark.parametrize("address", ["0.0.0.0:9464", "127.0.0.1:1", "[::1]:9464"])
def test_a_metrics_address_is_an_ip_and_a_port(
    monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    monkeypatch.setenv("SLUICEGATE_METRICS_ADDRESS", address)

    assert load_settings().metrics_address == address


@pytest.mark.parametrize(
    "address", ["9464", "localhost:9464", "127.0.0.1:", "127.0.0.1:0", "1.2.3.4:70000", "::1:9464"]
)
def test_a_bad_metrics_address_names_the_setting_and_its_variable(
    monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    monkeypatch.setenv("SLUICEGATE_METRICS_ADDRESS", address)

    message = error_of()

    assert "metrics_address (env SLUICEGATE_METRICS_ADDRESS): must be IP:port" in message
    assert repr(address) in message


@pytest.mark.parametrize("given", ["tls_cert", "tls_key"])
def test_cert_and_key_go_together(tmp_path: Path, given: str) -> None:
    message = error_of(**{given: pem(tmp_path, "only.pem", CERT)})
    assert "tls_cert and tls_key go together" in message


# --- links -------------------------------------------------------------------------------


@pytest.mark.parametrize("ui_url", ["https://temporal.example", "https://temporal.example/"])
def test_workflow_link_with_a_run_id(ui_url: str) -> None:
    settings = load_settings(ui_url=ui_url, namespace="prod")

    assert settings.workflow_link("deploy-checkout", "run-1") == (
        "https://temporal.example/namespaces/prod/workflows/deploy-checkout/run-1/history"
    )


@pytest.mark.parametrize("ui_url", ["https://temporal.example", "https://temporal.example/"])
def test_workflow_link_without_a_run_id(ui_url: str) -> None:
    settings = load_settings(ui_url=ui_url, namespace="prod")

    assert settings.workflow_link("deploy-checkout") == (
        "https://temporal.example/namespaces/prod/workflows/deploy-checkout"
    )


# --- TLS ---------------------------------------------------------------------------------


def test_plain_grpc_without_tls() -> None:
    assert tls_config(load_settings()) is False


@pytest.mark.parametrize(
    "overrides", [{"tls": True}, {"api_key": "secret"}], ids=["tls", "api_key"]
)
def test_system_cas_for_tls_or_an_api_key(overrides: dict[str, object]) -> None:
    assert tls_config(load_settings(**overrides)) is True


def test_a_tls_server_name_alone_turns_tls_on() -> None:
    assert tls_config(load_settings(tls_server_name="temporal.internal")) == TLSConfig(
        domain="temporal.internal"
    )


def test_tls_ca_file_is_read(tmp_path: Path) -> None:
    settings = load_settings(tls_ca=pem(tmp_path, "ca.pem", CA))

    assert tls_config(settings) == TLSConfig(server_root_ca_cert=CA)


def test_mtls_files_are_read(tmp_path: Path) -> None:
    settings = load_settings(
        tls_cert=pem(tmp_path, "client.pem", CERT),
        tls_key=pem(tmp_path, "client.key", KEY),
        tls_ca=pem(tmp_path, "ca.pem", CA),
        tls_server_name="temporal.internal",
    )

    assert tls_config(settings) == TLSConfig(
        server_root_ca_cert=CA,
        client_cert=CERT,
        client_private_key=KEY,
        domain="temporal.internal",
    )


def test_mtls_paths_from_env_expand_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pem(tmp_path, "client.pem", CERT)
    pem(tmp_path, "client.key", KEY)
    monkeypatch.setenv("SLUICEGATE_TLS_CERT", "~/client.pem")
    monkeypatch.setenv("SLUICEGATE_TLS_KEY", "~/client.key")

    assert tls_config(load_settings()) == TLSConfig(client_cert=CERT, client_private_key=KEY)


def test_unreadable_cert_names_the_setting(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    settings = load_settings(tls_cert=missing, tls_key=pem(tmp_path, "client.key", KEY))

    with pytest.raises(SettingsError, match=r"^tls_cert: cannot read") as caught:
        tls_config(settings)
    assert str(missing) in str(caught.value)


# --- commands hooks may run --------------------------------------------------------------


def test_commands_come_from_the_toml_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config_file(
        monkeypatch,
        tmp_path,
        "[commands.retire-fleet]\n"
        'argv = ["/opt/ops/retire-fleet", "--quiet"]\n'
        'arguments = ["region", "dry-run"]\n'
        'env = { FLEET_API = "https://fleet.internal" }\n'
        'cwd = "/opt/ops"\n'
        "\n"
        "[commands.warm-cache]\n"
        'argv = ["/usr/local/bin/warm"]\n',
    )

    commands = load_settings().commands

    assert sorted(commands) == ["retire-fleet", "warm-cache"]
    retire = commands["retire-fleet"]
    assert retire.argv == ("/opt/ops/retire-fleet", "--quiet")
    assert retire.arguments == ("region", "dry-run")
    assert retire.env == {"FLEET_API": "https://fleet.internal"}
    assert retire.cwd == Path("/opt/ops")
    assert commands["warm-cache"].arguments == ()
    assert commands["warm-cache"].cwd is None


def test_commands_come_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "SLUICEGATE_COMMANDS",
        '{"warm-cache": {"argv": ["/usr/local/bin/warm"], "arguments": ["size"]}}',
    )

    commands = load_settings().commands

    assert commands["warm-cache"].argv == ("/usr/local/bin/warm",)
    assert commands["warm-cache"].arguments == ("size",)


def test_no_commands_by_default() -> None:
    assert load_settings().commands == {}


@pytest.mark.parametrize(
    ("table", "words"),
    [
        (
            'argv = ["retire-fleet"]',
            ["commands.retire-fleet.argv", "absolute path", "'retire-fleet'"],
        ),
        ("argv = []", ["commands.retire-fleet.argv", "at least 1"]),
        (
            'argv = ["/bin/retire"]\narguments = ["region", "region"]',
            ["commands.retire-fleet.arguments", "unique: region"],
        ),
        (
            'argv = ["/bin/retire"]\narguments = ["Region"]',
            ["commands.retire-fleet.arguments.0", "pattern"],
        ),
        ('argv = ["/bin/retire"]\ncwd = "ops"', ["commands.retire-fleet.cwd", "absolute"]),
        (
            'argv = ["/bin/retire"]\nshell = true',
            ["unknown setting 'commands.retire-fleet.shell'", "known: argv, arguments, env, cwd"],
        ),
        ("arguments = []", ["commands.retire-fleet.argv", "required"]),
    ],
)
def test_bad_commands_name_the_field(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, table: str, words: list[str]
) -> None:
    config_file(monkeypatch, tmp_path, f"[commands.retire-fleet]\n{table}\n")

    message = error_of()

    assert "\n" not in message
    for word in words:
        assert word in message, message


def test_a_bad_command_name_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config_file(monkeypatch, tmp_path, '[commands."rm -rf"]\nargv = ["/bin/rm"]\n')

    assert error_of().startswith("bad setting: commands.rm -rf: String should match pattern")
