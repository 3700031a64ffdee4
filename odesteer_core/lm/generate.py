"""Side-by-side generation: every arm is one row of ONE batched forward pass per token.

Row ``i`` of the batch carries arm ``i`` (unsteered, one-step, ODESteer...). A forward hook on the
chosen decoder layer edits each row's activation with that row's steerer at the positions the
paper steers (the last position of every forward call: the last prompt token at prefill, then
each new token; KV cache on), records the judge's barrier before and after and the whole path,
and hands the edited hidden states on. Rows share the sampling noise (``sampling.py``), so the
arms differ only by steering.

The model is shared by every user of the app, and its hooks are global state. So the steering
hook, the CPU kernel switch (``cpu_kernels.py``) and the cancellation checks are installed
around each forward call (the prefill, then each decoding step) and removed when it returns or
raises, never held across a ``yield``: a stream that its consumer paused, abandoned or never
closed leaves the model exactly as it found it. The hook also acts only on forward calls made by
the thread that runs that call, so concurrent users never see each other's steering.

A request is bounded before any work starts (``MAX_FIELD_EVALUATIONS``), and one that is
cancelled (``cancel``: the client went away or pressed Stop) stops inside the forward pass in
progress, at the next decoder layer, and ends its stream with a notice.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from odesteer_core.lm.arms import (
    EVALUATIONS_PER_STEP,
    MAX_FIELD_EVALUATIONS,
    Arm,
    check_budget,
    field_evaluations,
)
from odesteer_core.lm.hooks import before_layers, layer_output_hook
from odesteer_core.lm.loading import LoadedLM
from odesteer_core.lm.records import ARM_NAMES, ArmRecord, Comparison
from odesteer_core.lm.sampling import GenerationSettings, TokenSampler
from odesteer_core.lm.tokens import eos_ids, token_ids
from odesteer_core.method.base import Steerer

__all__ = [
    "EVALUATIONS_PER_STEP",
    "Cancel",
    "MAX_FIELD_EVALUATIONS",
    "POSITIONS",
    "Arm",
    "field_evaluations",
    "format_prompt",
    "generate_arms",
]

POSITIONS = ("last", "from_prompt_end")
Cancel = threading.Event | Callable[[], bool]  # set (or returning True): stop the generation


def format_prompt(lm: LoadedLM, prompt: str) -> str:
    """The paper's formatting: the chat template for chat models, ``Q: ...\\nA:`` for base ones."""
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a string, got {type(prompt).__name__}")
    if not prompt.strip():
        raise ValueError("the prompt is empty; type a question or instruction")
    if lm.is_chat:
        messages = [{"role": "user", "content": prompt}]
        return lm.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False
        )
    return f"Q: {prompt}\nA:"


def _tokenize_prompt(
    lm: LoadedLM, text: str, max_new_tokens: int, notices: list[str]
) -> torch.Tensor:
    ids = token_ids(lm, text)
    limit = lm.max_length
    if limit is not None:
        room = limit - max_new_tokens
        if room < 1:
            raise ValueError(
                f"max_new_tokens={max_new_tokens} leaves no room for the prompt in this model's "
                f"context of {limit} tokens; ask for fewer new tokens"
            )
        if len(ids) > room:
            notices.append(
                f"The prompt was {len(ids)} tokens; its first {len(ids) - room} were cut so that "
                f"{max_new_tokens} new tokens fit the model's context of {limit}."
            )
            ids = ids[len(ids) - room :]
    return torch.tensor([ids], dtype=torch.long)


def _piece(tok, record: ArmRecord, token: int) -> str:
    """The text ``token`` adds to ``record.text`` (which it updates), for per-token display.

    Decoding tokens one by one breaks characters split over several byte-level tokens (they show
    as U+FFFD); the difference of the decoded prefixes does not. Bytes of an unfinished character
    are held back and shown with the token that completes it; special tokens (no text) show as
    themselves.
    """
    shown = record.text.rstrip("\ufffd")
    record.text = tok.decode(record.token_ids, skip_special_tokens=True)
    stable = record.text.rstrip("\ufffd")
    if not stable.startswith(shown):  # a tokenizer that rewrites earlier text: fall back
        return tok.decode([token])
    piece = stable[len(shown) :]
    if not piece and record.text == stable:  # no text at all, e.g. an end-of-sequence token
        return tok.decode([token])
    return piece


class _SteeringHook:
    """Edits rows of the hooked layer's output and keeps the records of the latest call."""

    def __init__(self, arms: list[Arm], judge: Steerer | None, steer_from: int, positions: str):
        self.arms, self.judge, self.positions = arms, judge, positions
        self.steer_from = steer_from  # first prompt position steered with "from_prompt_end"
        self.owner = threading.get_ident()  # the thread of the forward call (``_forward``)
        self.records: list[tuple[torch.Tensor, list[float]]] = []

    def _barrier(self, points: torch.Tensor) -> list[float]:
        if self.judge is None:
            return [float("nan")] * len(points)
        return self.judge.barrier(points).tolist()

    def __call__(self, hidden: torch.Tensor) -> torch.Tensor | None:
        if threading.get_ident() != self.owner:
            return None  # another user's forward pass on the shared model
        seq = hidden.shape[1]
        start = seq - 1
        if self.positions == "from_prompt_end" and seq > 1:
            start = min(self.steer_from, seq - 1)
        edited = hidden.clone()
        paths, values = [], []  # per row: recorded points (K + 1, d); their barrier or None
        for row, arm in enumerate(self.arms):
            x = hidden[row, start:]  # (P, d): the positions edited in this row
            h = None
            if arm.target is not None and arm.T > 0:  # each position stops at the level
                path, h = arm.steerer.flow(
                    x.float(), 0.0, 0, "euler", values=True, target=arm.target, max_T=arm.T
                )
                edited[row, start:] = path[-1]
                path, h = _unpad(path[:, -1:], h[:, -1])
                h = h.tolist() if arm.steerer is self.judge else None
            elif arm.steerer is None or arm.T == 0.0:
                path = x[-1:].unsqueeze(1)  # (1, 1, d): nothing moves
            else:  # the request was checked once (``Arm``): the unchecked hot path
                judged = arm.steerer is self.judge  # the barrier along the path comes with it
                path, h = arm.steerer.flow(
                    x.float(), arm.T, arm.n_steps, arm.solver_name, values=judged
                )
                h = h[:, -1].tolist() if judged else None
                if path.shape[0] > 1:
                    edited[row, start:] = path[-1]
                    path = path[:, -1:]  # (K + 1, 1, d): keep the record of the last position
            paths.append(path[:, 0])
            values.append(h)
        # One judge call for every other recorded point of every row.
        todo = [row for row, h in enumerate(values) if h is None]
        if todo:
            judged = self._barrier(torch.cat([paths[row] for row in todo]))
            for row in todo:
                values[row], judged = judged[: len(paths[row])], judged[len(paths[row]) :]
        self.records = [
            (path.detach().to("cpu", torch.float16), h) for path, h in zip(paths, values)
        ]
        return edited


def _unpad(path: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One position's target path (K + 1, 1, d) and values (K + 1,) without the padding that
    repeats its last point (``target.target_flow``)."""
    moved = (path[1:] != path[:-1]).flatten(1).any(dim=1).nonzero()
    k = int(moved[-1]) + 2 if len(moved) else 1
    return path[:k], h[:k]


def _stop_signal(cancel: Cancel | None) -> Callable[[], bool] | None:
    if cancel is None:
        return None
    is_set = getattr(cancel, "is_set", cancel)
    if not callable(is_set):
        raise TypeError(
            "cancel must be a threading.Event or a callable returning True to stop, got "
            f"{type(cancel).__name__}"
        )
    return is_set


def generate_arms(
    lm: LoadedLM,
    prompt: str,
    arms: list[Arm],
    *,
    layer: int,
    judge: Steerer | None = None,
    settings: GenerationSettings | None = None,
    positions: str = "last",
    cancel: Cancel | None = None,
) -> Iterator[Comparison]:
    """Generate all arms in one batch, yielding the growing ``Comparison`` after every token.

    Args:
        lm: The loaded model.
        prompt: The user's prompt (formatted with ``format_prompt``).
        arms: One ``Arm`` per row; names from ``ARM_NAMES`` or free-form.
        layer: Decoder layer whose output is edited (0-indexed).
        judge: A steerer with a barrier (usually the fitted ODESteer) that scores every
            recorded activation; None records NaN.
        settings: Decoding settings; greedy, 64 new tokens by default.
        positions: "last" (the paper: last position of every forward call) or
            "from_prompt_end" (also every prompt position after the user's text, e.g. the chat
            template's assistant header).
        cancel: A ``threading.Event`` (or a callable) that, once set (returning True), stops the
            generation at the next decoder layer of the forward pass in progress: the stream then
            yields the comparison so far once more, with ``done`` set and a notice that it
            stopped, and ends. Checked in the thread that runs the forward pass, so another
            thread may set it (e.g. when the client goes away).

    Raises:
        ValueError: Bad settings, or a request needing more than ``MAX_FIELD_EVALUATIONS``
            evaluations of the steering fields (raised before any forward pass).
    """
    settings = settings or GenerationSettings()
    if not arms:
        raise ValueError(f"no arms to generate; pick some of {ARM_NAMES}")
    if positions not in POSITIONS:
        raise ValueError(f"unknown positions {positions!r}; valid: {POSITIONS}")
    if judge is not None and not judge.has_barrier:
        raise ValueError(f"the judge must have a barrier (e.g. odesteer), got {judge.name}")
    should_stop = _stop_signal(cancel)
    layer = lm.check_layer(layer)
    device = lm.layer_device(layer)
    for steerer in {id(a.steerer): a.steerer for a in arms if a.steerer is not None}.values():
        steerer.to(device)  # once: the hook's hot path moves nothing
    if judge is not None:
        judge.to(device)
    notices = []
    if lm.offline_test_model:
        notices.append("Offline test model: random weights, so every output is meaningless.")
    text = format_prompt(lm, prompt)
    input_ids = _tokenize_prompt(lm, text, settings.max_new_tokens, notices)
    steer_from = input_ids.shape[1] - 1
    if positions == "from_prompt_end":
        # The user's text ends where the template's suffix (assistant header) begins.
        suffix = text[text.rfind(prompt) + len(prompt) :] if prompt in text else ""
        n_suffix = len(lm.tokenizer(suffix, add_special_tokens=False)["input_ids"]) if suffix else 0
        steer_from = max(input_ids.shape[1] - 1 - n_suffix, 0)
    check_budget(arms, settings.max_new_tokens, input_ids.shape[1] - steer_from)

    records = [
        ArmRecord(
            name=a.name,
            method=None if a.steerer is None else a.steerer.name,
            T=a.T,
            steps=a.n_steps,
            target=a.target,
        )
        for a in arms
    ]
    comparison = Comparison(
        prompt=prompt,
        formatted_prompt=text,
        arms=records,
        layer=layer,
        settings={**settings.to_dict(), "positions": positions},
        notices=notices,
    )
    job = _DecodeJob(
        lm=lm,
        input_ids=input_ids,
        layer=layer,
        hook=_SteeringHook(arms, judge, steer_from, positions),
        settings=settings,
        comparison=comparison,
        should_stop=should_stop,
    )
    yield from _decode(job)


@dataclass
class _DecodeJob:
    """One batched generation, fixed before its first forward pass."""

    lm: LoadedLM
    input_ids: torch.Tensor  # (1, L): the prompt, once
    layer: int  # the hooked decoder layer
    hook: _SteeringHook  # one row per arm
    settings: GenerationSettings
    comparison: Comparison  # grows with every token
    should_stop: Callable[[], bool] | None = None


class _Cancelled(Exception):
    """Raised inside a forward pass whose request was cancelled; never leaves this module."""


def _forward(job: _DecodeJob, inputs: dict) -> object:
    """One forward call of the batch, with the steering hook, the cancellation checks and the CPU
    kernels installed for this call only, and removed however it ends."""
    stop = job.should_stop
    if stop is not None and stop():
        raise _Cancelled
    owner = job.hook.owner = threading.get_ident()

    def check() -> None:
        if threading.get_ident() == owner and stop():  # not another user's forward pass
            raise _Cancelled

    checks = contextlib.nullcontext() if stop is None else before_layers(job.lm.layers, check)
    with layer_output_hook(job.lm.layers[job.layer], job.hook), checks, job.lm.cpu_kernels():
        out = job.lm.model(**inputs)
    if stop is not None and stop():  # set during the last layer: this token is not shown either
        raise _Cancelled
    return out


def _decode(job: _DecodeJob) -> Iterator[Comparison]:
    try:
        yield from _tokens(job)
        return
    except _Cancelled:
        pass  # the token loop's frame, with its KV cache, is freed with the exception here
    comparison = job.comparison
    n = comparison.timing.get("tokens", 0)
    comparison.notices.append(f"Generation stopped after {n} token(s): the request was cancelled.")
    comparison.done = True
    yield comparison


def _tokens(job: _DecodeJob) -> Iterator[Comparison]:
    """The token loop: one forward call per token, then the records, then a ``yield`` with
    nothing installed on the model and grad mode as the consumer left it."""
    lm, settings, comparison = job.lm, job.settings, job.comparison
    tok, device, batch = lm.tokenizer, lm.device, len(comparison.arms)
    ids = job.input_ids.to(device).repeat(batch, 1)  # (B, L): the same prompt in every row
    mask = torch.ones_like(ids)
    sampler = TokenSampler(settings)
    eos = eos_ids(lm)
    pad = tok.pad_token_id if tok.pad_token_id is not None else next(iter(eos), 0)
    finished = torch.zeros(batch, dtype=torch.bool)
    history = ids
    inputs = {"input_ids": ids, "attention_mask": mask, "use_cache": True, "logits_to_keep": 1}
    t0 = time.perf_counter()
    for step in range(settings.max_new_tokens):
        with torch.inference_mode():
            out = _forward(job, inputs)
            next_ids = sampler(history, out.logits[:, -1]).cpu()
            next_ids[finished] = pad
            history = torch.cat([history, next_ids.to(device)[:, None]], dim=1)
            mask = torch.cat([mask, mask.new_ones(batch, 1)], dim=1)
        _record(comparison, job.hook.records, next_ids, finished, eos, tok)
        if step == 0:
            comparison.timing["first_token_s"] = time.perf_counter() - t0
        comparison.timing["generate_s"] = time.perf_counter() - t0
        comparison.timing["tokens"] = step + 1
        if bool(finished.all()) or step == settings.max_new_tokens - 1:
            comparison.done = True
            yield comparison
            return
        yield comparison
        inputs = {
            "input_ids": history[:, -1:],
            "attention_mask": mask,
            "cache": out.cache,
            "use_cache": True,
        }


def _record(comparison, hook_records, next_ids, finished, eos, tok) -> None:
    """Append each unfinished row's new token, its text and the hook's records of this call."""
    for row, record in enumerate(comparison.arms):
        if finished[row]:
            continue
        token = int(next_ids[row])
        path, values = hook_records[row]
        record.token_ids.append(token)
        record.tokens.append(_piece(tok, record, token))
        record.barrier_before.append(values[0])
        record.barrier_after.append(values[-1])
        record.barrier_path.append(values)
        record.paths.append(path)
        if token in eos:
            finished[row] = True
            record.finished = True
