"""How each kind of activity is retried, in one place for every workflow."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

# Retrying cannot fix a bad spec or a router set up differently from what the spec says.
NON_RETRYABLE = ["SpecError", "RouterMisconfigured"]

# Short router and store operations heartbeat while they run: a worker that dies mid-call
# is noticed after this long instead of after their 30 s start-to-close timeout.
QUICK_HEARTBEAT = timedelta(seconds=5)
# Short router and store operations: a few seconds of retries, then the caller decides.
QUICK_RETRIES = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    maximum_interval=timedelta(seconds=5),
    maximum_attempts=10,
    non_retryable_error_types=NON_RETRYABLE,
)
# A health watcher whose worker died resumes from its heartbeat; five tries per stage.
WATCH_RETRIES = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_attempts=5,
    non_retryable_error_types=NON_RETRYABLE,
)
# One round of restore attempts; the workflow starts another round until one works.
ROLLBACK_RETRIES = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    maximum_interval=timedelta(seconds=5),
    maximum_attempts=5,
)
# Between rounds: 2 s at first (a router back after a blip is used at once), doubling up
# to 30 s, so a long outage does not flood the history.
ROLLBACK_FIRST_PAUSE = timedelta(seconds=2)
ROLLBACK_RETRY_PAUSE = timedelta(seconds=30)
# A notification's channels each get quick attempts inside the activity; these retries
# only cover a worker that died while delivering.
NOTIFY_RETRIES = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_attempts=3,
)
# SupersedeDeployment waits for the run it superseded to close: as long as that takes (a
# rollback is retried forever), each attempt long-polling the run's result.
AWAIT_RUN_RETRIES = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
)
AWAIT_RUN_HEARTBEAT = timedelta(seconds=10)
