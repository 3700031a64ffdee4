"""Side-by-side generation: every arm is one row of ONE batched forward pass per token.

Row ``i`` of the batch carries arm ``i`` (unsteered, one-step, ODESteer...). A forward hook on the
chosen decoder layer edits each row's activation with that row's steerer at the positions the
paper steers (the last position of every forward call: the last prompt token at prefill, then
each new token; KV cache on), records the judge's barrier before and after and the whole path,
and hands the edited hidden states on. Rows share the sampling noise (``sampling.py``), so the
arms differ only by steering. The hook lives in a context manager and acts only on forward calls
made by the thread that registered it, so concurrent users of one model never see each other's
steering, and it is removed however the generation ends (error, or the consumer closing the
stream early).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from odesteer_core.lm.hooks import layer_output_hook
from odesteer_core.lm.loading import LoadedLM
from odesteer_core.lm.records import ARM_NAMES, ArmRecord, Comparison
from odesteer_core.lm.sampling import GenerationSettings, TokenSampler
from odesteer_core.lm.tokens import eos_ids, token_ids
from odesteer_core.method.base import Steerer
from odesteer_core.method.checks import check_steps, check_T
from odesteer_core.method.ode import check_solver

__all__ = ["POSITIONS", "Arm", "format_prompt", "generate_arms"]

POSITIONS = ("last", "from_prompt_end")


@dataclass(frozen=True)
class Arm:
    """One row of the comparison: a steerer and its horizon (``steerer=None``: unsteered)."""

    name: str
    steerer: Steerer | None = None
    T: float = 0.0
    steps: int | None = None  # ODE methods: override the steerer's own
    solver: str | None = None

    def __post_init__(self) -> None:
        check_T(self.T)
        if self.steps is not None:
            check_steps(self.steps)
        if self.solver is not None:
            check_solver(self.solver)
        if self.steerer is not None and not self.steerer.is_fitted:
            self.steerer._require_fit()

    @property
    def n_steps(self) -> int:
        if self.steerer is None:
            return 0
        if not self.steerer.is_ode:
            return 1
        return self.steps if self.steps is not None else self.steerer.steps


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
        self.owner = threading.get_ident()
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
            if arm.steerer is None or arm.T == 0.0:
                path = x[-1:].unsqueeze(1)  # (1, 1, d): nothing moves
            elif arm.steerer is self.judge:  # the barrier along the path comes with the path
                path, h = arm.steerer.trajectory_with_barrier(
                    x, arm.T, steps=arm.steps, solver=arm.solver
                )
                h = h[:, -1].tolist()
            else:
                path = arm.steerer.trajectory(x, arm.T, steps=arm.steps, solver=arm.solver)
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


def generate_arms(
    lm: LoadedLM,
    prompt: str,
    arms: list[Arm],
    *,
    layer: int,
    judge: Steerer | None = None,
    settings: GenerationSettings | None = None,
    positions: str = "last",
    formatted: bool = False,
) -> Iterator[Comparison]:
    """Generate all arms in one batch, yielding the growing ``Comparison`` after every token.

    Args:
        lm: The loaded model.
        prompt: The user's prompt (formatted with ``format_prompt`` unless ``formatted``).
        arms: One ``Arm`` per row; names from ``ARM_NAMES`` or free-form.
        layer: Decoder layer whose output is edited (0-indexed).
        judge: A steerer with a barrier (usually the fitted ODESteer) that scores every
            recorded activation; None records NaN.
        settings: Decoding settings; greedy, 64 new tokens by default.
        positions: "last" (the paper: last position of every forward call) or
            "from_prompt_end" (also every prompt position after the user's text, e.g. the chat
            template's assistant header).
        formatted: ``prompt`` is already the model's input text.
    """
    settings = settings or GenerationSettings()
    if not arms:
        raise ValueError(f"no arms to generate; pick some of {ARM_NAMES}")
    if positions not in POSITIONS:
        raise ValueError(f"unknown positions {positions!r}; valid: {POSITIONS}")
    if judge is not None and not judge.has_barrier:
        raise ValueError(f"the judge must have a barrier (e.g. odesteer), got {judge.name}")
    layer = lm.check_layer(layer)
    notices = []
    if lm.offline_test_model:
        notices.append("Offline test model: random weights, so every output is meaningless.")
    text = prompt if formatted else format_prompt(lm, prompt)
    input_ids = _tokenize_prompt(lm, text, settings.max_new_tokens, notices)
    steer_from = input_ids.shape[1] - 1
    if positions == "from_prompt_end" and not formatted:
        # The user's text ends where the template's suffix (assistant header) begins.
        suffix = text[text.rfind(prompt) + len(prompt) :] if prompt in text else ""
        n_suffix = len(lm.tokenizer(suffix, add_special_tokens=False)["input_ids"]) if suffix else 0
        steer_from = max(input_ids.shape[1] - 1 - n_suffix, 0)

    records = [
        ArmRecord(
            name=a.name,
            method=None if a.steerer is None else a.steerer.name,
            T=a.T,
            steps=a.n_steps,
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
    yield from _decode(
        lm, input_ids, arms, layer, judge, settings, positions, steer_from, comparison
    )


def _decode(lm, input_ids, arms, layer, judge, settings, positions, steer_from, comparison):
    model, tok = lm.model, lm.tokenizer
    device = lm.device
    batch = len(arms)
    ids = input_ids.to(device).repeat(batch, 1)  # (B, L): the same prompt in every row
    mask = torch.ones_like(ids)
    sampler = TokenSampler(settings)
    eos = eos_ids(lm)
    pad = tok.pad_token_id if tok.pad_token_id is not None else next(iter(eos), 0)
    hook = _SteeringHook(arms, judge, steer_from, positions)
    finished = torch.zeros(batch, dtype=torch.bool)
    history = ids
    t0 = time.perf_counter()
    with layer_output_hook(lm.layers[layer], hook), lm.cpu_kernels(), torch.inference_mode():
        out = model(input_ids=ids, attention_mask=mask, use_cache=True, logits_to_keep=1)
        for step in range(settings.max_new_tokens):
            next_ids = sampler(history, out.logits[:, -1]).cpu()
            next_ids[finished] = pad
            for row, record in enumerate(comparison.arms):
                if finished[row]:
                    continue
                token = int(next_ids[row])
                path, values = hook.records[row]
                record.token_ids.append(token)
                record.tokens.append(_piece(tok, record, token))
                record.barrier_before.append(values[0])
                record.barrier_after.append(values[-1])
                record.barrier_path.append(values)
                record.paths.append(path)
                if token in eos:
                    finished[row] = True
                    record.finished = True
            if step == 0:
                comparison.timing["first_token_s"] = time.perf_counter() - t0
            comparison.timing["generate_s"] = time.perf_counter() - t0
            comparison.timing["tokens"] = step + 1
            if bool(finished.all()) or step == settings.max_new_tokens - 1:
                comparison.done = True
                yield comparison
                return
            yield comparison
            history = torch.cat([history, next_ids.to(device)[:, None]], dim=1)
            mask = torch.cat([mask, mask.new_ones(batch, 1)], dim=1)
            out = model(
                input_ids=next_ids.to(device)[:, None],
                attention_mask=mask,
                cache=out.cache,
                use_cache=True,
            )
