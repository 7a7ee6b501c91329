"""Scheduled living reviews: the `review` flow as a Prefect deployment with a cron schedule.

Two ways to keep a review alive (both need a Prefect server, e.g. `prefect server start`, and
PREFECT_API_URL pointing at it):

- `serve_review(workspace, cron)`: registers the deployment and runs its scheduled runs in this
  process (blocks until stopped; nothing else to start).
- `create_deployment(workspace, cron)`: only registers the deployment and its schedule. Its runs are
  executed by `serve`, or by a worker when `work_pool` is given
  (`prefect work-pool create review-pool --type process`, then `prefect worker start --pool review-pool`).

The deployment's entrypoint is the module path `flows.review.review`, so any process with this
package installed can run it, whatever its working directory; the workspace is passed as an
absolute path for the same reason. prefect.yaml at the repository root declares the same deployment
for `prefect deploy`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

from pipeline.errors import ReviewError

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment

DEPLOYMENT_NAME = "weekly-review"
DEFAULT_CRON = "0 6 * * 1"  # Mondays at 06:00 (UTC unless the server says otherwise)


def review_deployment(
    workspace: str | Path = ".", cron: str = DEFAULT_CRON, *, name: str = DEPLOYMENT_NAME, work_pool: str | None = None
) -> RunnerDeployment:
    """The review flow as a deployment of `workspace` on `cron` (not yet registered)."""
    from prefect.deployments.runner import EntrypointType

    from flows.review import review

    _check_cron(cron)
    root = Path(workspace).expanduser().resolve()
    if not root.is_dir():
        raise ReviewError(f"workspace {str(workspace)!r} is not a folder; give the folder that holds review.yaml")
    deployment = review.to_deployment(
        name=name,
        cron=cron,
        parameters={"workspace": str(root)},
        description=f"Living review of {root}: harvest what is new, code it, report what changed.",
        tags=["living-review"],
        work_pool_name=work_pool,
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    return cast("RunnerDeployment", deployment)  # to_deployment is typed sync-or-async; called sync here


def serve_review(workspace: str | Path = ".", cron: str = DEFAULT_CRON, *, name: str = DEPLOYMENT_NAME) -> None:
    """Register the scheduled deployment and execute its runs here until interrupted."""
    from prefect import serve

    _require_api_url()
    serve(review_deployment(workspace, cron, name=name))


def create_deployment(
    workspace: str | Path = ".", cron: str = DEFAULT_CRON, *, name: str = DEPLOYMENT_NAME, work_pool: str | None = None
) -> str:
    """Register (or update) the scheduled deployment with the server at PREFECT_API_URL; its id."""
    import httpx

    api_url = _require_api_url()
    deployment = review_deployment(workspace, cron, name=name, work_pool=work_pool)
    try:
        return str(deployment.apply(work_pool_name=work_pool))
    except (httpx.HTTPError, OSError, RuntimeError) as exc:
        raise ReviewError(
            f"could not register the deployment with the Prefect API at {api_url} ({type(exc).__name__}: {exc}); "
            "check the server is running (`prefect server start`)"
        ) from None


def _check_cron(cron: str) -> None:
    from prefect.client.schemas.schedules import CronSchedule

    try:
        CronSchedule(cron=cron)
    except ValueError:
        raise ReviewError(
            f"schedule {cron!r} is not a cron expression; give five fields, e.g. '0 6 * * 1' for Mondays at 06:00"
        ) from None


def _require_api_url() -> str:
    """The configured API URL: without one Prefect would use a temporary server that vanishes."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        raise ReviewError(
            "PREFECT_API_URL is not set, so the schedule would be lost with a temporary server; start one with "
            "`prefect server start` and run `prefect config set PREFECT_API_URL=http://127.0.0.1:4200/api`"
        )
    return str(url)
