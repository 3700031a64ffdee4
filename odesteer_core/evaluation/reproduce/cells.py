"""The work of one fold: fit the steerers, then fill each missing cell (generations or MC scores).

A ``FoldJob`` is everything one fold's work needs. ``fit_steerers`` fits on the main process
(activations cached in the output folder), saves every steerer with ``save_steerer``, and every
process then loads the same files, so all processes (and all reruns) steer with bit-identical
steerers. ``generate_cell`` and ``mc_cell`` split the fold's prompts into fixed chunks, shard the
chunks over the processes (``distributed.py``) and return the rows in prompt order.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from tqdm.auto import tqdm

from odesteer_core.evaluation.generation import distinct_n
from odesteer_core.evaluation.reproduce.config import RunConfig, digest
from odesteer_core.evaluation.reproduce.decode import (
    DecodeSettings,
    SteerArm,
    prompt_seed,
    sample_batch,
)
from odesteer_core.evaluation.reproduce.distributed import Workers
from odesteer_core.evaluation.reproduce.model import LazyModel
from odesteer_core.evaluation.reproduce.store import Store
from odesteer_core.evaluation.reproduce.tasks import TaskFold, TaskSpec, fit_texts, prompt_ids
from odesteer_core.evaluation.truthfulqa_mc import (
    answer_token_pairs,
    continuation_logprobs,
    mc_metrics,
)
from odesteer_core.lm.activations import extract_activations
from odesteer_core.lm.generate import Arm
from odesteer_core.lm.loading import LoadedLM
from odesteer_core.method.base import Steerer
from odesteer_core.method.persistence import load_steerer, save_steerer
from odesteer_core.method.registry import make_steerer
from odesteer_core.method.strength import relative_to_T

__all__ = ["FoldJob", "fit_steerers", "generate_cell", "mc_cell", "steer_arm"]

ArmKey = tuple[str, tuple[str, float] | None]  # (method, ("strength" | "target", value))


@dataclass
class FoldJob:
    """One fold of one task, and what working on it needs."""

    model: LazyModel  # loaded on first use: a finished fold never loads it
    layer: int
    spec: TaskSpec
    fold: TaskFold
    run: RunConfig
    store: Store
    workers: Workers
    identity: dict
    progress: bool = True

    @property
    def lm(self) -> LoadedLM:
        return self.model.lm

    @property
    def decode(self) -> DecodeSettings:
        settings = self.spec.decode.to_dict()
        if self.run.max_new_tokens is not None:
            settings["max_new_tokens"] = self.run.max_new_tokens
        return DecodeSettings(**settings)

    @property
    def group(self) -> str:
        """Tasks that fit on the same data share their steerers (TruthfulQA MC and generation)."""
        return "truthfulqa" if self.spec.name.startswith("truthfulqa") else self.spec.name

    @cached_property
    def fit_data_key(self) -> str:
        """The hash of what every fit of this fold reads (hashed once: the data can be large)."""
        return digest(
            {**self.identity, "layer": self.layer, "format": self.spec.fit_format,
             "pos": self.fold.pos, "neg": self.fold.neg}
        )  # fmt: skip

    def fit_key(self, method: str) -> str:
        params = make_steerer(method, seed=self.run.seed).get_params()
        return digest({"data": self.fit_data_key, "method": method, "params": params})

    @cached_property
    def prompts_key(self) -> str:
        return digest({"prompts": self.fold.prompts, "indices": self.fold.indices})

    def cell_key(self, arm: ArmKey) -> str:
        method, setting = arm
        fit = None if method == "none" else self.fit_key(method)
        decode = None if self.spec.decode is None else self.decode.to_dict()
        return digest(
            {**self.identity, "layer": self.layer, "task": self.spec.name,
             "fold": self.fold.fold, "prompts": self.prompts_key,
             "fit": fit, "method": method, "setting": setting, "steps": self.run.steps,
             "solver": self.run.solver, "decode": decode, "seed": self.run.seed,
             "chunk": self.run.gen_batch_size}
        )  # fmt: skip

    def cell_path(self, arm: ArmKey) -> Path:
        return self.store.generations(self.spec.name, arm, self.fold.fold, self.cell_key(arm))

    def chunks(self) -> list[list[int]]:
        """Positions of the fold's prompts, in fixed chunks of ``gen_batch_size``."""
        n, size = len(self.fold.prompts), self.run.gen_batch_size
        return [list(range(i, min(i + size, n))) for i in range(0, n, size)]


def fit_steerers(job: FoldJob, methods: list[str]) -> dict[str, Steerer]:
    """The fitted steerer of each method (fitted and saved once, by the main process)."""
    paths = {m: job.store.steerer(job.group, job.fold.fold, m, job.fit_key(m)) for m in methods}
    missing = [m for m, path in paths.items() if not path.is_file()]
    if job.workers.is_main and missing:
        pos, neg = fit_texts(job.lm, job.spec, job.fold)
        acts = extract_activations(
            job.lm, pos + neg, job.layer, progress=job.progress, cache_dir=job.store.activations
        )
        device = job.lm.layer_device(job.layer)
        for method in missing:
            steerer = make_steerer(method, seed=job.run.seed)
            steerer.fit(acts[: len(pos)].to(device), acts[len(pos) :].to(device))
            save_steerer(steerer, paths[method])
    job.workers.wait()
    device = job.lm.layer_device(job.layer)
    return {m: load_steerer(p, device=device) for m, p in paths.items()}


def steer_arm(job: FoldJob, arm: ArmKey, steerers: dict[str, Steerer]) -> SteerArm:
    method, setting = arm
    if setting is None:
        return SteerArm()
    steerer, (kind, value) = steerers[method], setting
    common = {"steps": job.run.steps, "solver": job.run.solver}
    if kind == "target":
        return SteerArm(steerer, target=value, **common)
    return SteerArm(steerer, T=relative_to_T(steerer, value), **common)


def generate_cell(job: FoldJob, arm: ArmKey, steered: SteerArm) -> list[dict]:
    """One row per prompt of the fold: the text, its token ids, seed and distinct-n."""
    fold, decode, tok = job.fold, job.decode, job.lm.tokenizer
    name = job.spec.name
    bar = tqdm(total=len(fold.prompts), desc=f"{name} {arm[0]}", disable=not job.progress)

    def work(chunk: list[int]) -> list[dict]:
        prompts = [prompt_ids(job.lm, job.spec, fold.prompts[i]) for i in chunk]
        seeds = [prompt_seed(job.run.seed, name, fold.indices[i]) for i in chunk]
        new = sample_batch(job.lm, prompts, seeds, steered, job.layer, decode)
        bar.update(len(chunk))
        rows = []
        for i, seed, ids in zip(chunk, seeds, new):
            text = tok.decode(ids, skip_special_tokens=True)
            row = {"fold": fold.fold, "index": fold.indices[i], "prompt": fold.prompts[i]}
            row.update(text=text, token_ids=ids, seed=seed)
            row.update({f"distinct_{n}": distinct_n([text], n) for n in (1, 2, 3)})
            rows.append(row)
        return rows

    with bar:
        rows = job.workers.map_chunks(job.chunks(), work)
    settings = {"method": arm[0], "setting": arm[1], "T": steered.T, "layer": job.layer}
    settings.update(decode=decode.to_dict(), steps=job.run.steps, solver=job.run.solver)
    return [{**row, "settings": settings} for row in rows]


def mc_cell(job: FoldJob, arm: ArmKey, steered: SteerArm) -> list[dict]:
    """MC1/MC2/MC3 of every test question of the fold under one arm (by likelihood)."""
    fold = job.fold
    lm_arm = None
    if steered.steerer is not None:
        lm_arm = Arm(arm[0], steered.steerer, steered.T, steps=job.run.steps, solver=job.run.solver)

    def work(chunk: list[int]) -> list[dict]:
        rows = []
        for i in chunk:
            correct, incorrect = fold.answers[i]
            pairs = answer_token_pairs(job.lm, fold.prompts[i], [*correct, *incorrect])
            lps = continuation_logprobs(job.lm, pairs, lm_arm, layer=job.layer, batch_size=8)
            scores = [float(lp.sum()) for lp in lps]
            metrics = mc_metrics(scores[: len(correct)], scores[len(correct) :])
            rows.append({"fold": fold.fold, "index": fold.indices[i], **metrics})
        return rows

    return job.workers.map_chunks(job.chunks(), work)
