"""``reproduce``: every task x method x setting of the paper's protocol, resumable, sharded.

``reproduce(job)`` checks everything first on the main process (settings, data files, judges,
the output folder) and prepares every task's data, before the model loads. Then, per task and
fold, it fits the missing steerers and fills the missing cells (``cells.py``), each written
atomically as it finishes; the judges score the cells that lack their scores; last, the main
process writes ``results.json`` and the Markdown tables from everything stored. A rerun with the same
arguments finds every file and recomputes nothing.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from odesteer_core.evaluation.reproduce.cells import (
    FoldJob,
    fit_steerers,
    generate_cell,
    mc_cell,
    steer_arm,
)
from odesteer_core.evaluation.reproduce.config import DataFiles, JudgeConfig, RunConfig, digest
from odesteer_core.evaluation.reproduce.distributed import Workers
from odesteer_core.evaluation.reproduce.judges import check_judge, perplexity_filter, run_judge
from odesteer_core.evaluation.reproduce.model import LazyModel, ModelOptions
from odesteer_core.evaluation.reproduce.prepare import prepare_task
from odesteer_core.evaluation.reproduce.report import CellResult, markdown_tables, result_rows
from odesteer_core.evaluation.reproduce.store import RESULTS_JSON, RESULTS_MD, Store, write_atomic
from odesteer_core.evaluation.reproduce.tasks import TASKS, TaskData

__all__ = ["ModelOptions", "Reproduction", "reproduce", "validate"]


@dataclass(frozen=True)
class Reproduction:
    """One ``reproduce`` command: model, arms, data, judges, output folder."""

    model: ModelOptions
    run: RunConfig
    out: str
    files: DataFiles = field(default_factory=DataFiles)
    judges: JudgeConfig = field(default_factory=JudgeConfig)
    force: bool = False
    progress: bool = True


def _data_key(task: str, job: Reproduction) -> str:
    files = {k: (v, _stamp(v)) for k, v in asdict(job.files).items()}
    run = job.run
    return digest({"task": task, "files": files, "seed": run.seed, "limit": run.limit,
                   "fit_limit": run.fit_limit, "format": 1})  # fmt: skip


def _stamp(path: str | None) -> list | None:
    if path is None or not Path(path).is_file():
        return None
    stat = Path(path).stat()
    return [stat.st_size, int(stat.st_mtime)]


def _prepare(job: Reproduction, store: Store) -> dict[str, TaskData]:
    """Every task's data: from the output folder when prepared before, else prepared now."""
    data = {}
    for task in job.run.tasks:
        path = store.data(task, _data_key(task, job))
        if path.is_file():
            data[task] = TaskData.from_dict(store.read_json(path))
            continue
        ppl = None
        if task == "toxicity" and job.files.rtp_ppl_model is not None:
            ppl = perplexity_filter(job.files.rtp_ppl_model, job.judges.device("perplexity"),
                                    job.judges.batch_size)  # fmt: skip
        data[task] = prepare_task(task, job.files, job.run, ppl)
        store.write_json(path, asdict(data[task]))
    return data


def _device_problem(flag: str, device: str) -> str | None:
    """What is wrong with a device name (None: nothing)."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        return f"{flag}: unknown device; use cpu, cuda or cuda:N"
    if parsed.type == "cuda" and not torch.cuda.is_available():
        return f"{flag}: no CUDA GPU is available here; use cpu"
    return None


def validate(job: Reproduction) -> dict[str, TaskData]:
    """Every check that can fail, before the model loads; returns the prepared data."""
    problems = job.files.missing_for(job.run.tasks)
    if problems:
        raise ValueError(problems[0])
    store = Store(job.out)
    store.check(job.model.identity, job.force)
    problems = [_device_problem(f"--judge-device {d}", d) for d in job.judges.devices.values()]
    problems = [p for p in problems if p is not None]
    for name in sorted({j for t in job.run.tasks for j in TASKS[t].judges}):
        model = getattr(job.judges, name)
        if model is not None:
            try:
                check_judge(name, model)
            except ValueError as err:
                problems.append(str(err))
    if job.files.rtp_ppl_model is not None and "toxicity" in job.run.tasks:
        try:
            check_judge("perplexity", job.files.rtp_ppl_model)
        except ValueError as err:
            problems.append(f"--rtp-ppl-model: {err}")
    if problems:
        raise ValueError("; ".join(problems))
    return _prepare(job, store)


def _run_fold(job: FoldJob) -> list[tuple]:
    """Fill the fold's missing cells; ``(arm, path)`` of every cell of the fold."""
    arms = job.run.arms()
    missing = [arm for arm in arms if not job.cell_path(arm).is_file()]
    methods = sorted({m for m, s in missing if s is not None})
    steerers = fit_steerers(job, methods) if methods else {}
    for arm in missing:
        steered = steer_arm(job, arm, steerers)
        fill = mc_cell if job.spec.decode is None else generate_cell
        rows = fill(job, arm, steered)
        if job.workers.is_main:
            job.store.write_rows(job.cell_path(arm), rows)
    job.workers.wait()
    return [(arm, job.cell_path(arm)) for arm in arms]


def _score(job: Reproduction, store: Store, task: str, cells: dict) -> list[CellResult]:
    """Run each of the task's judges on the cells that lack its scores (main process)."""
    results = {}
    for arm, paths in cells.items():
        rows = [r for p in paths for r in store.read_rows(p)]
        results[arm] = CellResult(task, arm[0], arm[1], rows)
    for name in TASKS[task].judges:
        model = getattr(job.judges, name)
        if model is None:
            continue
        spec = job.judges.spec(name)
        paths = {arm: store.scores(task, arm, name, digest({"cells": [p.name for p in cells[arm]],
                                                            **spec})) for arm in cells}  # fmt: skip
        todo = [arm for arm in cells if not paths[arm].is_file()]
        if todo:
            items = [(r["prompt"], r["text"]) for arm in todo for r in results[arm].rows]
            scores, _ = run_judge(
                name,
                model,
                items,
                device=job.judges.device(name),
                batch_size=job.judges.batch_size,
                label=job.judges.toxicity_label,
            )
            for arm in todo:
                mine, scores = scores[: len(results[arm].rows)], scores[len(results[arm].rows) :]
                failed = sum(math.isnan(s) for s in mine)
                mine = [None if math.isnan(s) else s for s in mine]  # strict JSON
                store.write_json(paths[arm], {"judge": spec, "scores": mine, "failed": failed})
        for arm in cells:
            stored = store.read_json(paths[arm])
            results[arm].scores[name] = [float("nan") if s is None else s for s in stored["scores"]]
            results[arm].failed[name] = stored["failed"]
    return list(results.values())


def reproduce(job: Reproduction) -> dict:
    """Run (or resume) the reproduction; returns the summary written to ``results.json``."""
    workers, store, t0 = Workers(), Store(job.out), time.perf_counter()
    model = LazyModel(job.model, workers.device)
    data, error = None, None
    if workers.is_main:
        try:
            if workers.world > 1 and job.model.device_map is not None:
                raise ValueError(
                    "--device-map spreads one model over every GPU of one process; with "
                    "several processes each takes its own GPU: drop --device-map, or run one"
                )
            data = validate(job)
            model.layer(job.run.layer)  # in range, before any work
            store.claim(job.model.identity)
        except (ValueError, TypeError, OSError) as err:
            error = str(err)
    data, error = workers.share((data, error))
    if error is not None:
        raise ValueError(error)
    layer = model.layer(job.run.layer)
    timing, results = {"prepare_s": time.perf_counter() - t0}, []
    for task in job.run.tasks:
        t1, cells = time.perf_counter(), {}
        for fold in data[task].folds:
            fold_job = FoldJob(model, layer, TASKS[task], fold, job.run, store, workers,
                               job.model.identity, job.progress and workers.is_main)  # fmt: skip
            for arm, path in _run_fold(fold_job):
                cells.setdefault(arm, []).append(path)
        if workers.is_main:
            results += _score(job, store, task, cells)
        workers.wait()
        timing[f"{task}_s"] = time.perf_counter() - t1
    settings = {**job.model.identity, "layer": layer, "seed": job.run.seed,
                "limit": job.run.limit, "fit_limit": job.run.fit_limit}  # fmt: skip
    rows = result_rows(results, settings) if workers.is_main else []
    notices = [n for t in job.run.tasks for n in data[t].notices]
    if model.offline_test_model:
        notices.append("Offline test model: random weights, so every number is meaningless.")
    summary = {"rows": rows, "settings": settings, "timing": timing, "notices": notices,
               "processes": workers.world}  # fmt: skip
    if workers.is_main:
        store.write_json(store.root / RESULTS_JSON, summary)
        title = f"Reproduction: {job.model.name}, layer {layer}"
        write_atomic(store.root / RESULTS_MD, markdown_tables(rows, title) + "\n")
    workers.wait()
    return json.loads(json.dumps(summary))
