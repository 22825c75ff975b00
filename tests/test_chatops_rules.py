"""Chat-ops' pure parts: `/deploy` parsing, who may do what, token scopes, the guards, and
the `[chatops]` settings and their errors."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from frontends.chatops.access import decide, find_token, groups_to_check, token_digest
from frontends.chatops.access import token_refusal as refusal_of
from frontends.chatops.commands import USAGE, Command, UsageError, parse
from frontends.chatops.guards import RateLimit, ReplayGuard
from sluicegate.chatops_settings import ApiToken, ChatOpsSettings, Rule
from sluicegate.settings import CONFIG_ENV, SettingsError, load_settings

ACCESS = {
    "*": {"status": Rule(users=("U0ALICE", "U0BOB")), "pause": Rule(users=("*",))},
    "checkout": {
        "promote": Rule(users=("U0ALICE",), groups=("S0ONCALL",)),
        "abort": Rule(users=("U0ALICE", "U0BOB")),
    },
}

# -- commands ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("status checkout", Command("status", "checkout")),
        ("  PROMOTE   checkout  ", Command("promote", "checkout")),
        ("promote checkout --full", Command("promote", "checkout", full=True)),
        (
            "promote checkout --full dashboards are green",
            Command("promote", "checkout", "dashboards are green", True),
        ),
        ("abort checkout p99 &gt; 200 ms", Command("abort", "checkout", "p99 > 200 ms")),
        ("pause checkout", Command("pause", "checkout")),
        ("resume checkout batch done", Command("resume", "checkout", "batch done")),
        ("rollback checkout", Command("rollback", "checkout")),
    ],
)
def test_commands_parse(text: str, command: Command) -> None:
    assert parse(text) == command


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", [USAGE]),
        ("help", [USAGE]),
        ("promot checkout", ["unknown action 'promot'", "status, promote, abort"]),
        ("promote", ["promote: which service?", "usage"]),
        ("promote --full", ["which service?"]),
        ("status Check Out", ["SERVICE must be 1-63 characters", "'Check'"]),
        ("abort checkout --fast", ["unknown option --fast", "--full"]),
        ("pause checkout --full", ["--full goes with promote only, not pause"]),
        ("abort checkout " + "x" * 2001, ["2001 characters; at most 2000"]),
    ],
)
def test_malformed_commands_say_what_is_wrong_and_what_is_valid(
    text: str, words: list[str]
) -> None:
    with pytest.raises(UsageError) as caught:
        parse(text)
    for word in words:
        assert word in str(caught.value)


# -- who may do what -----------------------------------------------------------------------


def test_a_service_rule_allows_its_users() -> None:
    decision = decide(ACCESS, "checkout", "promote", "U0ALICE")
    assert decision.allowed
    assert "[chatops.access.checkout] promote" in decision.why


def test_a_user_not_in_the_rule_is_refused_naming_the_rule_and_the_fix() -> None:
    decision = decide(ACCESS, "checkout", "promote", "U0MALLORY")
    assert not decision.allowed
    assert decision.why == (
        "<@U0MALLORY> may not promote checkout: [chatops.access.checkout] promote allows "
        "users U0ALICE and groups S0ONCALL only; an admin can add U0MALLORY (or one of its "
        "groups) there"
    )


def test_a_member_of_an_allowed_group_is_allowed() -> None:
    assert groups_to_check(ACCESS, "checkout", "promote") == ("S0ONCALL",)
    assert decide(ACCESS, "checkout", "promote", "U0CAROL", member_of={"S0ONCALL"}).allowed
    assert not decide(ACCESS, "checkout", "promote", "U0CAROL", member_of={"S0OTHER"}).allowed


def test_the_star_entry_is_the_default_and_a_service_entry_wins() -> None:
    assert decide(ACCESS, "payments", "pause", "U0ANYONE").allowed  # "*" pause: everyone
    assert decide(ACCESS, "checkout", "pause", "U0ANYONE").allowed  # no checkout pause rule
    assert not decide(ACCESS, "checkout", "abort", "U0CAROL").allowed  # checkout's abort wins


def test_an_action_without_any_rule_is_refused_with_an_example_rule() -> None:
    decision = decide(ACCESS, "payments", "rollback", "U0ALICE")
    assert not decision.allowed
    assert "nobody may rollback payments" in decision.why
    assert 'rollback = { users = ["U0ALICE"] }' in decision.why


def test_status_is_open_to_the_workspace_unless_configured() -> None:
    assert decide({}, "checkout", "status", "U0ANYONE").allowed
    assert not decide({}, "checkout", "promote", "U0ANYONE").allowed
    assert not decide(ACCESS, "checkout", "status", "U0CAROL").allowed  # "*" status lists users


# -- API tokens ----------------------------------------------------------------------------


def token(name: str, secret: str, services: tuple[str, ...], actions: tuple[str, ...]) -> ApiToken:
    return ApiToken.model_validate(
        {"name": name, "sha256": token_digest(secret), "services": services, "actions": actions}
    )


TOKENS = (
    token("ci", "ci-secret", ("checkout",), ("status", "promote")),
    token("ops", "ops-secret", ("*",), ("*",)),
)


def test_tokens_are_found_by_their_sha256_only() -> None:
    assert find_token(TOKENS, "ci-secret") == TOKENS[0]
    assert find_token(TOKENS, "ops-secret") == TOKENS[1]
    assert find_token(TOKENS, "guess") is None
    assert find_token(TOKENS, TOKENS[0].sha256) is None  # the digest is not the token


def test_token_scopes_name_the_missing_scope() -> None:
    ci, ops = TOKENS
    assert refusal_of(ci, "checkout", "promote") is None
    assert refusal_of(ops, "payments", "rollback") is None
    assert refusal_of(ci, "payments", "status") == (
        "token 'ci' may not act on service 'payments': its services are checkout; "
        "add 'payments' to its services to allow it"
    )
    assert refusal_of(ci, "checkout", "abort") == (
        "token 'ci' may not abort: its actions are status, promote; "
        "add 'abort' to its actions to allow it"
    )


# -- guards --------------------------------------------------------------------------------


def test_the_replay_guard_remembers_signatures_for_five_minutes() -> None:
    now = [1000.0]
    guard = ReplayGuard(clock=lambda: now[0])
    assert guard.first_time("v0=abc")
    assert not guard.first_time("v0=abc")
    assert guard.first_time("v0=def")
    now[0] += 301
    assert guard.first_time("v0=abc")  # older than any timestamp Slack may still send


async def test_the_rate_limit_is_per_caller() -> None:
    limit = RateLimit("2/minute")
    assert [await limit.allow("slack:U1") for _ in range(3)] == [True, True, False]
    assert await limit.allow("slack:U2")
    assert limit.retry_after == 60


# -- settings ------------------------------------------------------------------------------


@pytest.fixture
def config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[str], Path]:
    """Writes the settings file SLUICEGATE_CONFIG names; no SLUICEGATE_* of the machine."""
    for name in list(os.environ):
        if name.startswith("SLUICEGATE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    path = tmp_path / "sluicegate.toml"
    monkeypatch.setenv(CONFIG_ENV, str(path))

    def write(text: str) -> Path:
        path.write_text(text)
        return path

    return write


def test_chatops_settings_from_toml_and_env(
    config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = token_digest("t")
    config(
        "[chatops]\n"
        'rate_limit = "5/second"\n'
        '[chatops.access."*"]\n'
        'status = { users = ["*"] }\n'
        "[chatops.access.checkout]\n"
        'promote = { users = ["U0123"], groups = ["S0456"] }\n'
        '[[chatops.tokens]]\nname = "ci"\n'
        f'sha256 = "{digest}"\nservices = ["checkout"]\nactions = ["status", "promote"]\n'
    )
    monkeypatch.setenv("SLUICEGATE_CHATOPS__SIGNING_SECRET", "s3cret")
    monkeypatch.setenv("SLUICEGATE_CHATOPS__SLACK_BOT_TOKEN", "xoxb-1")

    chatops = load_settings().chatops

    assert chatops.signing_secret is not None
    assert chatops.signing_secret.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(chatops)
    assert chatops.rate_limit == "5/second"
    assert chatops.access["checkout"]["promote"] == Rule(users=("U0123",), groups=("S0456",))
    assert chatops.tokens[0].name == "ci"
    assert chatops.serves_slack and chatops.serves_api


def test_chatops_defaults_serve_nothing(config: Callable[[str], Path]) -> None:
    config("")
    chatops = load_settings().chatops
    assert chatops == ChatOpsSettings()
    assert not chatops.serves_slack and not chatops.serves_api
    assert chatops.max_body_bytes == 65536 and chatops.rate_limit == "20/minute"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            '[chatops]\nsigning_secrt = "x"\n',
            ["unknown setting 'chatops.signing_secrt'", "known: signing_secret"],
        ),
        (
            '[chatops]\nrate_limit = "lots"\n',
            ["chatops.rate_limit (env SLUICEGATE_CHATOPS__RATE_LIMIT)", '"20/minute"'],
        ),
        (
            "[chatops]\nmax_body_bytes = 10\n",
            ["chatops.max_body_bytes", "greater than or equal to 1024"],
        ),
        (
            '[chatops.access.checkout]\npromot = { users = ["U0123"] }\n',
            ["chatops.access.checkout.promot", "'promote'"],
        ),
        (
            '[chatops.access.checkout]\npromote = { users = ["alice"] }\n',
            ["chatops.access.checkout.promote.users", "alice"],
        ),
        (
            '[chatops.access.checkout]\npromote = { userz = ["U0123"] }\n',
            ["unknown setting 'chatops.access.checkout.promote.userz'", "known: users, groups"],
        ),
        (
            '[chatops.access."Check Out"]\nstatus = { users = ["*"] }\n',
            ["chatops.access", "'Check Out'"],
        ),
        (
            '[chatops.access.checkout]\npromote = { groups = ["S0456"] }\n',
            ["chatops: access names Slack user groups, so slack_bot_token"],
        ),
        (
            '[[chatops.tokens]]\nname = "ci"\nsha256 = "abc"\n'
            'services = ["*"]\nactions = ["status"]\n',
            ["chatops.tokens.0.sha256", "64 lowercase hex"],
        ),
        (
            '[[chatops.tokens]]\nname = "ci"\nsha256 = "'
            + "a" * 64
            + '"\nservices = []\nactions = ["status"]\n',
            ["chatops.tokens.0.services"],
        ),
    ],
)
def test_bad_chatops_settings_are_one_line_naming_the_field(
    config: Callable[[str], Path], text: str, words: list[str]
) -> None:
    path = config(text)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message
    for word in words:
        assert word in message, message
