"""A deployment's lifecycle hooks, as the workflow runs them: each an activity whose result
(with the hook's output) stays in the history and in the deployment's status."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from sluicegate.contracts import RUN_HOOK, HookContext, HookResult, RunHookInput
    from sluicegate.spec import DeploymentSpec, HookEvent, HookSpec
    from workflows.retries import NOTIFY_RETRIES, QUICK_HEARTBEAT


class Hooks:
    def __init__(self, spec: DeploymentSpec, results: tuple[HookResult, ...] = ()) -> None:
        self.spec = spec
        self.results = list(results)  # earlier runs' too, when it continued as new

    async def run(
        self,
        event: HookEvent,
        hooks: tuple[HookSpec, ...],
        weight: int,
        stage: str | None = None,
        endpoints: tuple[str, ...] = (),
    ) -> HookResult | None:
        """Run `hooks` in order until one fails; that one's result, or None if all passed."""
        context = self._context(event, weight, stage)
        for hook in hooks:
            result = await workflow.execute_activity(
                RUN_HOOK,
                RunHookInput(hook=hook, context=context, endpoints=endpoints),
                result_type=HookResult,
                start_to_close_timeout=hook.time_limit(),
                heartbeat_timeout=QUICK_HEARTBEAT,
                # The hook's own attempts happen inside; these cover a worker that died
                # (a hook may so run twice: hooks must be idempotent, docs/HOOKS.md).
                retry_policy=NOTIFY_RETRIES,
                summary=f"{event} hook {hook.name} ({hook.type})",
            )
            self.results.append(result)
            if not result.ok:
                return result
        return None

    def _context(self, event: HookEvent, weight: int, stage: str | None) -> HookContext:
        info = workflow.info()
        return HookContext(
            service=self.spec.service,
            stable_version=self.spec.stable.version,
            canary_version=self.spec.canary.version,
            event=event,
            stage=stage,
            weight=weight,
            stable_endpoints=self.spec.stable.endpoints,
            canary_endpoints=self.spec.canary.endpoints,
            workflow_id=info.workflow_id,
            run_id=info.run_id,
        )
