"""The command hook: run a command the worker's settings declare, once; exit 0 passes.

No shell: the argv is the setting's, plus `--name=value` for each argument the spec gives
(declared names only, in the declared order). The command reads the hook context as JSON
on stdin and finds it in SLUICEGATE_* variables too. It runs in a process group of its
own: past the hook's timeout the group gets SIGTERM, then SIGKILL; whatever the command
leaves running in its group when it exits is killed as well. Its stdout and stderr go to
one temporary file, of which the last 4 KiB are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import tempfile
from collections.abc import Mapping
from typing import BinaryIO

from activities.hooks.outcome import Ran
from sluicegate.contracts.hooks import MAX_OUTPUT, HookContext
from sluicegate.settings import CommandSetting
from sluicegate.spec import CommandHook

KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL of a timed-out command's group
_OURS = "SLUICEGATE_"


async def run_command(
    hook: CommandHook, context: HookContext, commands: Mapping[str, CommandSetting]
) -> Ran:
    setting = commands.get(hook.command)
    if setting is None:
        known = ", ".join(sorted(commands)) or "none"
        return Ran(
            ok=False,
            detail=f"command {hook.command!r} is not in this worker's settings "
            f"([commands.{hook.command}]); known commands: {known}",
            attempts=0,
        )
    if undeclared := sorted(set(hook.args) - set(setting.arguments)):
        declared = ", ".join(setting.arguments) or "none"
        return Ran(
            ok=False,
            detail=f"command {hook.command!r} does not declare the argument "
            f"{', '.join(undeclared)}; declared arguments: {declared}",
            attempts=0,
        )
    with tempfile.TemporaryFile() as output:  # not a pipe: a leftover could hold it open
        return await _run(hook, context, setting, output)


async def _run(
    hook: CommandHook, context: HookContext, setting: CommandSetting, output: BinaryIO
) -> Ran:
    argv = command_line(setting, hook.args)
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
            env=command_env(setting, hook, context),
            cwd=setting.cwd,
            start_new_session=True,  # its own process group, killed as one
        )
    except OSError as err:
        return Ran(ok=False, detail=f"cannot start {argv[0]}: {err.strerror or err}", attempts=0)
    try:
        async with asyncio.timeout(hook.timeout.total_seconds()):
            await asyncio.gather(_feed(process, context.model_dump_json().encode()), process.wait())
    except TimeoutError:
        await _stop(process)
        return Ran(
            ok=False,
            detail=f"no exit within {hook.timeout.total_seconds():g} s: its process group "
            "was killed",
            output=_tail(output),
        )
    finally:
        if process.returncode is None:  # the activity was cancelled
            await _stop(process)
        _signal_group(process.pid, signal.SIGKILL)  # whatever it left running
    return _exited(await process.wait(), _tail(output))


def command_line(setting: CommandSetting, args: Mapping[str, str]) -> list[str]:
    """The setting's argv, then `--name=value` for each given argument, in declared order.

    One argv item per argument, so a value can never become an option or a second argument.
    """
    given = [f"--{name}={args[name]}" for name in setting.arguments if name in args]
    return [*setting.argv, *given]


def command_env(setting: CommandSetting, hook: CommandHook, context: HookContext) -> dict[str, str]:
    """The worker's environment without its own SLUICEGATE_* settings (secrets among them),
    the setting's `env`, then the hook context as SLUICEGATE_* variables."""
    inherited = {key: value for key, value in os.environ.items() if not key.startswith(_OURS)}
    return {**inherited, **setting.env, **context_variables(hook.name, context)}


def context_variables(hook: str, context: HookContext) -> dict[str, str]:
    return {
        "SLUICEGATE_HOOK": hook,
        "SLUICEGATE_EVENT": context.event,
        "SLUICEGATE_SERVICE": context.service,
        "SLUICEGATE_STABLE_VERSION": context.stable_version,
        "SLUICEGATE_CANARY_VERSION": context.canary_version,
        "SLUICEGATE_STAGE": context.stage or "",
        "SLUICEGATE_WEIGHT": str(context.weight),
        "SLUICEGATE_STABLE_ENDPOINTS": ",".join(context.stable_endpoints),
        "SLUICEGATE_CANARY_ENDPOINTS": ",".join(context.canary_endpoints),
        "SLUICEGATE_WORKFLOW_ID": context.workflow_id,
        "SLUICEGATE_RUN_ID": context.run_id,
    }


def _exited(code: int, output: str) -> Ran:
    if code == 0:
        return Ran(ok=True, detail="exit 0", output=output, status=0)
    said = f"killed by {_signal_name(-code)}" if code < 0 else f"exit {code}"
    last_line = next((line for line in reversed(output.splitlines()) if line.strip()), "")
    detail = f"{said}: {last_line.strip()}" if last_line else f"{said} (no output)"
    return Ran(ok=False, detail=detail, output=output, status=code)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


async def _feed(process: asyncio.subprocess.Process, data: bytes) -> None:
    """Write the context to stdin and close it; a command that does not read it is fine."""
    stdin = process.stdin
    assert stdin is not None
    try:
        stdin.write(data)
        await stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        stdin.close()


def _tail(output: BinaryIO) -> str:
    """The last MAX_OUTPUT bytes the command wrote, as text; says if more came before."""
    size = output.seek(0, os.SEEK_END)
    output.seek(max(0, size - MAX_OUTPUT))
    kept = output.read().decode("utf-8", errors="replace")
    if size <= MAX_OUTPUT:
        return kept
    note = f"[{size} bytes in all, only the last ones kept]\n"
    return note + kept[len(note) :]


async def _stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM to the command's process group, SIGKILL after KILL_GRACE; then reap it."""
    _signal_group(process.pid, signal.SIGTERM)
    try:
        async with asyncio.timeout(KILL_GRACE):
            await process.wait()
    except TimeoutError:
        pass
    _signal_group(process.pid, signal.SIGKILL)
    await process.wait()


def _signal_group(pid: int, signum: signal.Signals) -> None:
    """Signal the process group `pid` leads (start_new_session made it leader)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
        os.killpg(pid, signum)
