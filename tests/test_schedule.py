"""The scheduled living review: a REAL local Prefect server (SQLite, loopback, started and stopped here).

create_deployment registers 'review/weekly-review' with its cron schedule, and the server's scheduler
then creates the Monday 06:00 runs; prefect.yaml deploys the same deployment with `prefect deploy`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest

from pipeline.errors import ReviewError

REPO = Path(__file__).resolve().parents[1]
CRON = "0 6 * * 1"
STARTUP_TIMEOUT = 120.0  # the first start runs the database migrations; slow on a loaded machine


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def server_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Environment of a running `prefect server start`: its own PREFECT_HOME and SQLite file."""
    home = tmp_path_factory.mktemp("prefect")
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home / "home"),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "1",  # scheduled runs appear within a second
        "PREFECT_API_URL": url,
    }
    log = (home / "server.log").open("wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-ui",
            "--analytics-off",
            "--no-late-runs",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        import flows.schedule  # noqa: F401  (import Prefect and the flow while the server boots)

        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not _healthy(url):
            if server.poll() is not None or time.monotonic() > deadline:
                tail = (home / "server.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"the Prefect server did not become healthy:\n{tail}")
            time.sleep(0.25)
        yield env
    finally:
        server.terminate()  # by PID: the server process this fixture started
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        log.close()


@pytest.fixture
def api_settings(server_env: dict[str, str]) -> Iterator[None]:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: server_env["PREFECT_API_URL"]}):
        yield


def _read_deployment(name: str):  # type: ignore[no-untyped-def]
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return client.read_deployment_by_name(name)


def test_create_deployment_registers_weekly_schedule(api_settings: None, tmp_path: Path) -> None:
    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    from flows.schedule import create_deployment

    deployment_id = create_deployment(tmp_path, CRON)

    deployment = _read_deployment("review/weekly-review")
    assert str(deployment.id) == deployment_id
    assert [(s.schedule.cron, s.active) for s in deployment.schedules] == [(CRON, True)]
    assert deployment.parameters == {"workspace": str(tmp_path.resolve())}
    assert deployment.entrypoint == "flows.review.review"
    # The server's scheduler turns the schedule into runs: Mondays at 06:00 UTC.
    with get_client(sync_client=True) as client:
        runs = []
        for _ in range(60):
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id]))
            )
            if runs:
                break
            time.sleep(0.5)
    starts = [run.expected_start_time.astimezone(UTC) for run in runs if run.expected_start_time is not None]
    assert len(starts) == len(runs) > 0 and all((s.weekday(), s.hour, s.minute) == (0, 6, 0) for s in starts)
    assert {run.state_name for run in runs} == {"Scheduled"}


def test_prefect_yaml_deploys_the_weekly_review(server_env: dict[str, str], api_settings: None) -> None:
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name="review-pool", type="process"), overwrite=True)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "prefect",
            "--no-prompt",
            "deploy",
            "--all",
            "--prefect-file",
            str(REPO / "prefect.yaml"),
        ],
        cwd=REPO,
        env=server_env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    deployment = _read_deployment("review/weekly-review")
    assert [(s.schedule.cron, s.active) for s in deployment.schedules] == [(CRON, True)]
    assert deployment.parameters == {"workspace": "."}
    assert deployment.work_pool_name == "review-pool"
    assert deployment.entrypoint == "flows/review.py:review"


def test_serve_review_serves_a_cron_deployment(
    api_settings: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import prefect

    from flows.schedule import serve_review

    served = []
    monkeypatch.setattr(prefect, "serve", lambda *deployments, **kwargs: served.extend(deployments))
    serve_review(tmp_path, "30 5 * * 3")
    (deployment,) = served
    assert deployment.name == "weekly-review" and deployment.parameters == {"workspace": str(tmp_path.resolve())}
    assert [s.schedule.cron for s in deployment.schedules] == ["30 5 * * 3"]


def test_schedule_mistakes_are_one_sentence(tmp_path: Path) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.schedule import create_deployment

    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        with pytest.raises(ReviewError, match=r"'0 6 \* \*' is not a cron expression; give five fields"):
            create_deployment(tmp_path, "0 6 * *")
        with pytest.raises(ReviewError, match="is not a folder"):
            create_deployment(tmp_path / "missing", CRON)
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        with pytest.raises(ReviewError, match="PREFECT_API_URL is not set"):
            create_deployment(tmp_path, CRON)
