#!/usr/bin/env python3
"""Grade one assignment with Dask workers running as Slurm jobs (dask-jobqueue).

Run it on a machine that can submit Slurm jobs (usually a login node) and that
holds the course folder and the gradebook; the Dask scheduler runs inside this
process, the workers run on the compute nodes:

    .venv/bin/python deploy/slurm/grade_on_slurm.py --assignment conv_step_by_step \\
        --jobs 4 --processes 8 --partition short --account cs123

Each Slurm job starts ``--processes`` Dask worker processes with ONE thread
each (grading uses process-wide state), so one job asks for
``processes * cores-per-worker`` CPUs and ``processes * memory-per-worker``.
The workers only need the course's Python environment (the same venv path on
every node) and bubblewrap; they never see the course folder or the gradebook.

``--print-job-script`` prints the batch script Slurm would receive and exits
without submitting anything. Arguments after ``--`` go to ``cnn grade``
unchanged (for example ``-- --allow-no-sandbox --students alice,bob``).

Exit code: whatever ``cnn grade`` returns (0, 3 or 1), or 1 when the workers
never arrived.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: Leave the cluster this long before Slurm's walltime kills the job, so a
#: worker hands its task back instead of dying in the middle of a submission.
LIFETIME_MARGIN_SECONDS = 300


def walltime_seconds(text: str) -> int:
    """Slurm's time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S."""
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not a Slurm time limit: {text!r}")
    days, a, b, c = (int(g) if g is not None else None for g in match.groups())
    if days is not None:  # D-H, D-H:M, D-H:M:S
        hours, minutes, seconds = a, b or 0, c or 0
    elif c is not None:  # H:M:S
        hours, minutes, seconds = a, b, c
    elif b is not None:  # M:S
        hours, minutes, seconds = 0, a, b
    else:  # M
        hours, minutes, seconds = 0, a, 0
    return (days or 0) * 86400 + hours * 3600 + minutes * 60 + seconds


def worker_lifetime(walltime: str) -> str:
    """``dask worker --lifetime``: a little before the walltime (90 % for very short jobs)."""
    total = walltime_seconds(walltime)
    keep = total - LIFETIME_MARGIN_SECONDS if total > 2 * LIFETIME_MARGIN_SECONDS else int(total * 0.9)
    return f"{max(keep, 60)}s"


def build_parser() -> argparse.ArgumentParser:
    env = os.environ.get
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--assignment", default=env("CNN_ASSIGNMENT"),
                   help="assignment id (default: $CNN_ASSIGNMENT, else the course's first)")
    p.add_argument("--jobs", type=int, default=int(env("CNN_SLURM_JOBS", "2")),
                   help="Slurm jobs to run (default: $CNN_SLURM_JOBS or 2)")
    p.add_argument("--processes", type=int, default=int(env("CNN_SLURM_PROCESSES", "4")),
                   help="Dask worker processes per job, one thread each (default 4)")
    p.add_argument("--cores-per-worker", type=int, default=1,
                   help="CPUs booked per worker process (default 1)")
    p.add_argument("--memory-per-worker", default=env("CNN_SLURM_MEMORY_PER_WORKER", "4GiB"),
                   help="memory per worker process; the job asks for processes times this (default 4GiB)")
    p.add_argument("--walltime", default=env("CNN_SLURM_WALLTIME", "02:00:00"),
                   help="time limit of each job, Slurm format (default 02:00:00)")
    p.add_argument("--partition", "--queue", dest="partition", default=env("CNN_SLURM_PARTITION"),
                   help="Slurm partition, #SBATCH -p (default: $CNN_SLURM_PARTITION)")
    p.add_argument("--account", default=env("CNN_SLURM_ACCOUNT"),
                   help="Slurm account, #SBATCH -A (default: $CNN_SLURM_ACCOUNT)")
    p.add_argument("--venv", default=env("CNN_VENV", str(REPO / ".venv")),
                   help="the course venv, at the same path on every node (default: $CNN_VENV or ./.venv)")
    p.add_argument("--interface", default=env("CNN_SLURM_INTERFACE"),
                   help="network interface the scheduler and workers use, e.g. ib0 (default: Dask's choice)")
    p.add_argument("--local-directory", default="${TMPDIR:-/tmp}",
                   help="node-local scratch for the workers (default: $TMPDIR on the node, else /tmp)")
    p.add_argument("--log-directory", default=env("CNN_SLURM_LOG_DIR"),
                   help="where Slurm writes each job's stdout/stderr (default: the submit directory)")
    p.add_argument("--job-extra", action="append", default=[], metavar="DIRECTIVE",
                   help="extra #SBATCH directive, repeatable, e.g. --job-extra=--qos=teaching")
    p.add_argument("--wait-timeout", type=float, default=1800.0,
                   help="seconds to wait for all workers to join (default 1800)")
    p.add_argument("--min-workers", type=int, default=0,
                   help="start grading once this many workers joined (default: all of them)")
    p.add_argument("--print-job-script", action="store_true",
                   help="print the job script and exit, submitting nothing")
    p.add_argument("grade_args", nargs=argparse.REMAINDER,
                   help="after --: extra arguments for `cnn grade`")
    return p


def cluster_kwargs(args: argparse.Namespace) -> dict:
    """Everything SLURMCluster needs, kept apart so it can be read (and tested) on its own."""
    venv = os.path.abspath(args.venv)
    processes = args.processes
    return dict(
        job_name="cnn-grader",
        # One process per grading slot and one thread per process: cores / processes = 1,
        # so dask-jobqueue writes `--nthreads 1 --nworkers <processes>`.
        cores=processes,
        processes=processes,
        # Memory for the whole job; each worker gets memory / processes as --memory-limit.
        memory=_times(args.memory_per_worker, processes),
        job_cpu=processes * args.cores_per_worker,
        walltime=args.walltime,
        queue=args.partition,
        account=args.account,
        interface=args.interface,
        local_directory=args.local_directory,
        log_directory=args.log_directory,
        job_extra_directives=list(args.job_extra),
        # The job runs the venv's own interpreter, after activating the venv: nbgrader starts
        # `alembic` and Jupyter kernels as subprocesses and finds them on PATH.
        python=f"{venv}/bin/python",
        job_script_prologue=[f"source {shlex.quote(venv)}/bin/activate"],
        worker_extra_args=[
            # Leave before the walltime; adapt() below submits a replacement job.
            "--lifetime", worker_lifetime(args.walltime),
            "--lifetime-stagger", "2m",
        ],
    )


def _times(memory: str, n: int) -> str:
    from dask.utils import format_bytes, parse_bytes

    return format_bytes(parse_bytes(memory) * n).replace(" ", "")


def grade_argv(args: argparse.Namespace, scheduler_address: str) -> list[str]:
    argv = ["--engine", "dask", "--scheduler", scheduler_address]
    if args.assignment:
        argv += ["--assignment", args.assignment]
    extra = list(args.grade_args)
    if extra and extra[0] == "--":
        extra = extra[1:]
    return argv + extra


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError:
        print("dask-jobqueue is missing: pip install dask-jobqueue==0.9.0 -c constraints.txt", file=sys.stderr)
        return 1

    # The scheduler lives in this process; the dashboard is not needed for grading.
    with SLURMCluster(scheduler_options={"dashboard_address": None}, **cluster_kwargs(args)) as cluster:
        if args.print_job_script:
            print(cluster.job_script())
            return 0

        from distributed import Client

        wanted = args.jobs * args.processes
        cluster.scale(jobs=args.jobs)
        # Keep that many jobs: when a job's workers leave (--lifetime), a new job replaces it.
        cluster.adapt(minimum_jobs=args.jobs, maximum_jobs=args.jobs)
        print(f"scheduler {cluster.scheduler_address}: waiting for {wanted} workers "
              f"({args.jobs} Slurm jobs of {args.processes})", file=sys.stderr)
        with Client(cluster) as client:
            try:
                client.wait_for_workers(args.min_workers or wanted, timeout=args.wait_timeout)
            except TimeoutError:
                joined = len(client.scheduler_info()["workers"])
                print(f"only {joined} of {wanted} workers joined within {args.wait_timeout:.0f} s; "
                      "check `squeue --me` and the jobs' output files", file=sys.stderr)
                return 1

        from cnngrader.tools import batch

        try:
            return batch.main(grade_argv(args, cluster.scheduler_address))
        except SystemExit as exc:  # argparse errors inside cnn grade
            return exc.code if isinstance(exc.code, int) else 1


if __name__ == "__main__":
    raise SystemExit(main())
