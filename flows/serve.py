"""Serve ``reproduce-paper`` as deployments, or run one deployment end to end through a Prefect server.

    python -m flows.serve                       # serve reproduce-paper/all, /table-1 ... /figure-7 (blocks)
    python -m flows.serve --run table-3 [--profile toy|test|paper] [--seeds N] [--parallel-rows N]
                                        [--set dotted.key=value ...]
    python -m flows.serve --pool gpus [--gpus 8]  # register them with a work pool; `prefect worker start`

The deployments are ``reproduce-paper/<TARGET>`` for ``all`` and every target of
:data:`cgrpo_core.reproduce.TARGETS`, each with its ``target`` fixed and ``profile`` (default: toy),
``seeds`` (default 1), ``preset``, ``overrides``, ``rows`` and ``parallel_rows`` (default 0: auto) as
parameters:

    prefect deployment run reproduce-paper/table-3 -p seeds=3 -p profile=toy --watch

``--run TARGET`` is what ``./run.sh reproduce TARGET`` does: it uses the Prefect server at
``$PREFECT_API_URL``, or starts a local one (``prefect server start``, stopped at the end) when that is
unset; serves the deployments in a child process; runs ``reproduce-paper/TARGET`` with the given
parameters and waits for it; stops the serving process. Its exit status is 0 only when the flow run
COMPLETED, and the last line printed is the report's folder.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from cgrpo_core.config import PRESETS, PROFILES
from cgrpo_core.reproduce import TARGETS
from cgrpo_core.store import workspace
from flows.cli import parse_changes

FLOW = "reproduce-paper"
DEPLOYMENTS = ("all", *TARGETS)
HUMAN = ("table-6", "figure-5")  # deployed once a human evaluation's answers are imported


def deployment_names() -> tuple[str, ...]:
    """``all``, every target, and ``table-6``/``figure-5`` when imported human answers exist."""
    from tasks.reproduce import latest_human_results

    return DEPLOYMENTS + (HUMAN if latest_human_results() else ())


REPO = Path(__file__).resolve().parents[1]


def deployments(profile: str = "toy") -> list:
    """One runner deployment per target, ``target`` fixed, the rest parameters."""
    from flows.reproduce import reproduce_paper

    return [
        reproduce_paper.to_deployment(
            name=name,
            parameters={"target": name, "profile": profile},
            description=f"Reproduce {TARGETS[name].title if name in TARGETS else name} ({profile} profile)",
            tags=["reproduce-paper", name],
        )
        for name in deployment_names()
    ]


def deploy_to_pool(pool: str, profile: str = "toy", gpus: int | None = None) -> list[str]:
    """Register the deployments with the work pool ``pool`` (created as a ``process`` pool if missing) for
    ``prefect worker start --pool POOL`` to run: one worker per machine (per GPU machine in a team). With
    ``gpus``, the tag ``gpu`` (training and evaluation tasks) gets a concurrency limit of that many slots.
    The code is read from this checkout (``from_source``): a worker on another machine needs the same
    path, or a ``prefect.yaml`` with a ``git_clone`` pull step (README, "A team set-up")."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    from flows.reproduce import reproduce_paper

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(pool)
        except Exception:  # ObjectNotFound: create it
            client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
        if gpus is not None:
            client.create_concurrency_limit(tag="gpu", concurrency_limit=gpus)
    remote = reproduce_paper.from_source(source=str(REPO), entrypoint="flows/reproduce.py:reproduce_paper")
    names = []
    for name in deployment_names():
        remote.deploy(
            name=name,
            work_pool_name=pool,
            parameters={"target": name, "profile": profile},
            tags=["reproduce-paper", name],
            build=False,
            push=False,
            print_next_steps=False,
            ignore_warnings=True,  # "a process pool runs the code where the worker runs": intended here
        )
        names.append(f"{FLOW}/{name}")
    return names


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(check, what: str, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {process.returncode}")
        try:
            if check():
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(1.0)
    raise TimeoutError(f"{what}: not ready after {timeout:.0f} s")


@contextmanager
def _process(command: list[str], env: dict, log: Path):
    """A child process in its own process group, stopped (SIGTERM, then SIGKILL) on exit."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(
            command, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def local_server(stack: ExitStack, env: dict, logs: Path) -> str:
    """Start ``prefect server start`` on a free local port; its API URL once healthy."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    server = stack.enter_context(_process(command, env, logs / "prefect-server.log"))
    _wait(lambda: httpx.get(f"{url}/health", timeout=5).status_code == 200, "the Prefect server", 300, server)
    print(f"Prefect server: {url.removesuffix('/api')} (log {logs / 'prefect-server.log'})", flush=True)
    return url


def _deployed(env: dict) -> bool:
    url, names = env["PREFECT_API_URL"], deployment_names()
    reply = httpx.post(
        f"{url}/deployments/filter", json={"deployments": {"name": {"any_": list(names)}}}, timeout=10
    )
    return reply.status_code == 200 and len(reply.json()) >= len(names)


def run_target(target: str, parameters: dict, profile: str) -> tuple[str, str]:
    """Serve the deployments and run ``reproduce-paper/target`` (module docstring); (final state, report)."""
    logs = workspace() / "outputs" / "logs"
    env = dict(os.environ)
    with ExitStack() as stack:
        if not env.get("PREFECT_API_URL"):
            env["PREFECT_API_URL"] = local_server(stack, env, logs)
        # Before anything here imports prefect (deployment_names does): prefect reads its settings once, at
        # import, and a client made without the URL starts a temporary server of its own on the same database.
        os.environ["PREFECT_API_URL"] = env["PREFECT_API_URL"]
        serve = stack.enter_context(
            _process([sys.executable, "-m", "flows.serve", "--profile", profile], env, logs / "serve.log")
        )
        _wait(lambda: _deployed(env), "serving the deployments", 300, serve)
        print(
            f"serving {len(deployment_names())} deployments of {FLOW} (log {logs / 'serve.log'})", flush=True
        )
        from prefect.deployments import run_deployment

        flow_run = run_deployment(f"{FLOW}/{target}", parameters=parameters, timeout=None)
        state = flow_run.state.type.value if flow_run.state else "UNKNOWN"
    report = workspace() / "outputs" / "reports" / profile / target
    return state, str(report)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--run", metavar="TARGET", choices=DEPLOYMENTS + HUMAN, help="run this deployment and wait"
    )
    parser.add_argument("--profile", default="toy", choices=list(PROFILES))
    parser.add_argument("--preset", default="paper_default", choices=sorted(PRESETS))
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument(
        "--parallel-rows",
        type=int,
        default=0,
        help="with --run: rows trained or evaluated at once (default 0: auto; 1: in the flow's process)",
    )
    parser.add_argument("--set", dest="changes", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--limit", type=int, help="most flow runs at once when serving (default: no limit)")
    parser.add_argument("--pool", help="register the deployments with this work pool instead of serving them")
    parser.add_argument("--gpus", type=int, help="with --pool: a concurrency limit on the tag gpu")
    args = parser.parse_args(argv)
    if args.pool:
        names = deploy_to_pool(args.pool, args.profile, args.gpus)
        print(f"{len(names)} deployments in work pool {args.pool!r}; start a worker with:")
        print(f"  prefect worker start --pool {args.pool}")
        return
    if args.run is None:
        from prefect import serve

        serve(*deployments(args.profile), limit=args.limit)
        return
    parameters = {"profile": args.profile, "seeds": args.seeds, "preset": args.preset}
    if args.parallel_rows:
        parameters["parallel_rows"] = args.parallel_rows
    if args.changes:
        parameters["overrides"] = parse_changes(args.changes)
    state, report = run_target(args.run, parameters, args.profile)
    print(f"{FLOW}/{args.run}: {state}")
    if state != "COMPLETED":
        raise SystemExit(f"{FLOW}/{args.run} ended {state}: see the Prefect UI or outputs/logs/serve.log")
    print(report)


if __name__ == "__main__":
    main()
