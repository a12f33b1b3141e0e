"""Dask as the executor of `degrade.dataset.generate`: reach a cluster, check its workers, map in order.

`dask_executor()` starts a `distributed.LocalCluster` of single-threaded worker processes for the length
of the `with`; `dask_executor("tcp://host:8786")` uses a running cluster instead. Workers write sample files
to the output folder themselves, so on a real cluster the output folder and the source photos must be on
shared storage mounted at the same path everywhere (docs/scaling.md). Dask is optional: the `cluster` extra.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from degrade.versions import environment

MISSING = "--backend dask needs the cluster extra: pip install patina-photo[cluster]"
CONNECT_TIMEOUT = 10.0  # seconds to reach a scheduler
WORKER_TIMEOUT = 60.0  # seconds to wait for a first worker on a scheduler that has none yet
T = TypeVar("T")


class ClusterError(RuntimeError):
    """The Dask backend cannot run as asked; the one-line message says why."""


@dataclass
class DaskExecutor:
    """Runs tasks on the cluster behind `client` (`workers` threads in all) and yields results in task order.

    At most 4 tasks per worker are in flight, so a million-sample run submits as it goes and memory stays flat.
    """

    client: Any
    workers: int

    def map(self, fn: Callable[..., T], tasks: Iterable[tuple[Any, ...]]) -> Iterator[T]:
        from distributed import KilledWorker

        in_flight: deque[Any] = deque()
        try:
            for args in tasks:
                in_flight.append(self.client.submit(fn, *args, pure=False))
                if len(in_flight) >= 4 * self.workers:
                    yield in_flight.popleft().result()
            while in_flight:
                yield in_flight.popleft().result()
        except KilledWorker as exc:
            raise ClusterError(f"a Dask worker died while rendering ({_one_line(exc)}); rerun to resume") from None
        finally:
            if in_flight:  # interrupted: the cluster should not go on with work nobody will collect
                self.client.cancel(list(in_flight))


@contextmanager
def dask_executor(scheduler: str | None = None, workers: int = 2) -> Iterator[DaskExecutor]:
    """A DaskExecutor on the cluster at `scheduler`, or on a local cluster of `workers` processes."""
    try:
        import distributed
    except ImportError:
        raise ClusterError(MISSING) from None
    with ExitStack() as stack:
        target: Any = scheduler
        if scheduler is None:
            try:
                target = stack.enter_context(
                    distributed.LocalCluster(
                        n_workers=workers,
                        threads_per_worker=1,
                        processes=True,
                        # No dashboard; the scheduler's HTTP endpoints on a free port (runs never fight over 8787).
                        dashboard_address=":0",
                        scheduler_kwargs={"dashboard": False},
                        silence_logs=logging.ERROR,
                    )
                )
            except Exception as exc:  # e.g. worker processes that cannot start
                raise ClusterError(f"cannot start a local Dask cluster ({_one_line(exc)})") from None
        try:
            client = stack.enter_context(distributed.Client(target, timeout=CONNECT_TIMEOUT, set_as_default=False))
        except Exception as exc:  # OSError when unreachable, ValueError for a malformed address, ...
            raise ClusterError(f"--scheduler {scheduler}: cannot reach a Dask scheduler ({_one_line(exc)})") from None
        yield DaskExecutor(client, _check_workers(client, scheduler))


def _check_workers(client: Any, scheduler: str | None) -> int:
    """Number of worker threads, once every worker runs the same versions as this process."""
    if not client.nthreads():
        try:
            client.wait_for_workers(1, timeout=WORKER_TIMEOUT)
        except TimeoutError:
            raise ClusterError(f"no Dask worker joined {scheduler} within {WORKER_TIMEOUT:.0f} s") from None
    here = environment()
    try:
        found = client.run(environment)
    except Exception as exc:  # typically: no module named 'degrade' on the workers
        raise ClusterError(
            f"the Dask workers cannot run Patina ({_one_line(exc)}); install patina-photo on every worker"
        ) from None
    for address, versions in sorted(found.items()):
        if versions != here:
            differ = ", ".join(f"{k} {versions.get(k)} (here {v})" for k, v in here.items() if versions.get(k) != v)
            raise ClusterError(
                f"worker {address} has {differ}: its samples would not be byte-identical; "
                "install the same versions everywhere"
            )
    return sum(client.nthreads().values())


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
