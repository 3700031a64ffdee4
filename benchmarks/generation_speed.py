"""Generation speed: what steering costs per generated token, arms batched vs alone.

A random-weight Llama is built in memory (no download), a built-in concept's activations are
extracted from it at the default layer and ODESteer + CAA are fitted on them; then, for one prompt,
greedy decoding of ``--tokens`` new tokens (EOS disabled, so every run makes all of them) is timed
for these arm sets, round-robin over ``--repeats`` rounds after one warm-up round:

  none                     the unsteered arm alone (a plain decoding loop, batch 1)
  one_step                 the CAA arm alone (one step per token)
  odesteer                 the ODESteer arm alone (10 Euler steps, 8000 sketch components)
  none+one_step+odesteer   the three arms in ONE batch (what the app and the CLI run)
  plain model, batch 1/3   the model alone (no hook, no records), 1 or 3 copies of the prompt:
                           their ratio is the floor under the three-arm ratio on this machine

Printed: median ms per token of each, and the ratios with the issue's targets, each the median
of the per-round ratios (both sides of a ratio are timed in every round, seconds apart, so slow
drift of a shared machine's speed cancels; the ratio of the medians is printed beside it):
  three arms batched / unsteered alone   <= 1.5  (three separate runs cost 3x)
  ODESteer alone / one-step alone        <= 1.05 on CPU (--preset cpu-85m), <= 1.15 on the demo
                                         model (demo), <= 1.02 on GPU (gpu-8b)

Presets:
  cpu-85m  12 layers, d = 768, MLP 2048, 16k vocab (tied): about 97 M parameters, float32, CPU
  demo     the trained demo model shipped in the package (``tiny-trained-llama``: 4 layers,
           d = 192, 2.6 M parameters, float32, CPU), concept ``sentiment``: its forward pass
           takes a few milliseconds, so the flow's own cost shows most here
  gpu-8b   Llama-3.1-8B shape (32 layers, d = 4096, MLP 14336, GQA 8, 128k vocab), bfloat16, CUDA;
           finishes in about 2 minutes on one H100 (needs about 17 GB of GPU memory)

Linear layers run as ``load_lm`` runs them: float32 on CPU through oneDNN
(``odesteer_core/lm/cpu_kernels.py``); ``--no-onednn`` keeps PyTorch's default kernel (MKL) to
show the difference.

Usage: python benchmarks/generation_speed.py [--preset cpu-85m|demo|gpu-8b] [--tokens 64] [--repeats 5]
       [--no-onednn]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from datetime import date
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere
import odesteer_core as oc  # noqa: E402
from odesteer_core.lm.layers import find_decoder_layers
from odesteer_core.lm.tiny_model import build_tiny_tokenizer


def _llama(width: int, mlp: int, layers: int, heads: int, kv_heads: int, vocab: int, **extra):
    """A Llama config's sizes, by name."""
    return dict(
        hidden_size=width, intermediate_size=mlp, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=kv_heads, vocab_size=vocab, **extra,
    )  # fmt: skip


PRESETS = {
    "cpu-85m": dict(
        config=_llama(768, 2048, 12, 12, 12, 16000, tie_word_embeddings=True),
        device="cpu",
        dtype=torch.float32,
        target=1.05,
    ),
    "demo": dict(device="cpu", dtype=torch.float32, target=1.15, concept="sentiment"),
    "gpu-8b": dict(
        config=_llama(4096, 14336, 32, 32, 8, 128256, rope_theta=500000.0),  # Llama-3.1-8B
        device="cuda",
        dtype=torch.bfloat16,
        target=1.02,
    ),
}
ARM_SETS = {
    "none": ("none",),
    "one_step": ("one_step",),
    "odesteer": ("odesteer",),
    "none+one_step+odesteer": ("none", "one_step", "odesteer"),
}
PROMPT = "Write a short note to a colleague about the meeting tomorrow morning."


def demo_lm(onednn: bool = True) -> oc.LoadedLM:
    """The trained demo model as ``load_lm`` gives it. Its chat template needs its end-of-turn
    token, so the token stays; instead the decoding loop is given no stop ids (this benchmark
    only), so that every run makes all its tokens."""
    import odesteer_core.lm.generate as generate

    generate.eos_ids = lambda lm: set()
    return oc.load_lm("tiny-trained-llama", onednn=onednn)


def build_lm(preset: dict, onednn: bool = True) -> oc.LoadedLM:
    """A random-weight Llama of the preset's shape, in memory, with the offline test tokenizer.

    Linear layers as ``load_lm`` leaves them: oneDNN on CPU inside ``compare`` unless ``onednn`` is False.

    Token ids beyond the tokenizer's 512 decode to nothing; timing is unaffected.
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tiny_tokenizer()
    config = LlamaConfig(
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=None,  # never stop early: every run generates all its tokens
        pad_token_id=tokenizer.pad_token_id,
        **preset["config"],
    )
    torch.manual_seed(0)
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(preset["dtype"])
    try:
        with torch.device(preset["device"]):
            model = LlamaForCausalLM(config).eval()
    finally:
        torch.set_default_dtype(default_dtype)
    model.generation_config.eos_token_id = None
    tokenizer.eos_token = None  # the sampler's EOS set is empty: fixed-length runs
    return oc.LoadedLM(
        model=model,
        tokenizer=tokenizer,
        name="random-llama-benchmark",
        revision=None,
        layers=find_decoder_layers(model),
        is_chat=False,
        offline_test_model=True,
        onednn=onednn,
    )


def time_per_token(lm, fitted, arms, tokens: int) -> float:
    settings = oc.GenerationSettings(max_new_tokens=tokens)
    if lm.device.type == "cuda":
        torch.cuda.synchronize()
    *_, result = oc.compare(lm, fitted, PROMPT, oc.Steering(arms=arms), settings)
    if lm.device.type == "cuda":
        torch.cuda.synchronize()
    n = result.timing["tokens"]
    assert n == tokens, f"generated {n} tokens, expected {tokens}"
    return 1000 * result.timing["generate_s"] / n


def plain_time_per_token(lm, batch: int, tokens: int) -> float:
    """The model alone: greedy decoding of ``batch`` copies of the prompt; no hook, no records.

    Same kernels, prompt and number of forward calls as ``compare``; the ratio of batch 3 to
    batch 1 is the floor under the three-arm ratio on this machine.
    """
    text = oc.format_prompt(lm, PROMPT)
    ids = lm.tokenizer(text, return_tensors="pt").input_ids.to(lm.device).repeat(batch, 1)
    n = ids.shape[1]
    mask = torch.ones(batch, n + tokens, dtype=torch.long, device=lm.device)
    with lm.cpu_kernels(), torch.inference_mode():
        if lm.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = lm.model(input_ids=ids, attention_mask=mask[:, :n], use_cache=True, logits_to_keep=1)
        for i in range(tokens - 1):
            next_ids = out.logits[:, -1].argmax(-1, keepdim=True)
            out = lm.model(
                input_ids=next_ids,
                attention_mask=mask[:, : n + i + 1],
                past_key_values=out.past_key_values,
                use_cache=True,
            )
        if lm.device.type == "cuda":
            torch.cuda.synchronize()
    return 1000 * (time.perf_counter() - t0) / tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu-85m")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--concept", default=None, help="default: polite (demo: sentiment)")
    parser.add_argument(
        "--no-onednn",
        action="store_true",
        help="keep PyTorch's default float32 CPU linear kernel (MKL) instead of oneDNN",
    )
    args = parser.parse_args()
    preset = PRESETS[args.preset]
    args.concept = args.concept or preset.get("concept", "polite")
    if preset["device"] == "cuda" and not torch.cuda.is_available():
        sys.exit("error: the gpu-8b preset needs a CUDA GPU; use --preset cpu-85m on CPU")

    t0 = time.perf_counter()
    if "config" in preset:
        lm = build_lm(preset, onednn=not args.no_onednn)
    else:
        lm = demo_lm(onednn=not args.no_onednn)
    n_params = sum(p.numel() for p in lm.model.parameters())
    kernels = f"oneDNN ({lm.onednn_layers} layers)" if lm.onednn_layers else "PyTorch default"
    print(
        f"model: {lm.name} {n_params / 1e6:.1f} M parameters, {lm.n_layers} layers, "
        f"d = {lm.d_model}, {lm.dtype}, {lm.device}, linear kernels: {kernels}; "
        f"built in {time.perf_counter() - t0:.1f} s"
    )
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as cache:  # the weights are new each run: no stale cache
        fitted = oc.fit_concept(
            lm, oc.load_concept(args.concept), methods=("caa",), progress=False, cache_dir=cache
        )
    ode = fitted.odesteer
    print(
        f"fitted {args.concept!r} at layer {fitted.layer} ({len(fitted.pos)}+{len(fitted.neg)} "
        f"activations) in {time.perf_counter() - t0:.1f} s: odesteer steps={ode.steps}, "
        f"solver={ode.solver}, n_components={ode.n_components}"
    )

    cases = {name: partial(time_per_token, lm, fitted, arms) for name, arms in ARM_SETS.items()}
    cases |= {f"plain model, batch {b}": partial(plain_time_per_token, lm, b) for b in (1, 3)}
    times: dict[str, list[float]] = {name: [] for name in cases}
    for round_ in range(args.repeats + 1):  # round 0 warms up
        for name, case in cases.items():
            ms = case(args.tokens)
            if round_ > 0:
                times[name].append(ms)
    med = {name: statistics.median(values) for name, values in times.items()}

    print(
        f"\n{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
        f"{date.today()}; {args.tokens} new tokens, greedy, median of {args.repeats} rounds\n"
    )
    print("| arms | ms / token | all rounds |")
    print("|---|---:|---|")
    for name, values in times.items():
        print(f"| {name} | {med[name]:.1f} | {', '.join(f'{v:.1f}' for v in values)} |")

    def paired(a: str, b: str) -> tuple[float, float]:
        """Median of the per-round ratios a/b (rounds are adjacent in time, so slow drift of this
        machine's speed cancels), and the ratio of the medians, for reference."""
        per_round = statistics.median(x / y for x, y in zip(times[a], times[b]))
        return per_round, med[a] / med[b]

    batched, batched_m = paired("none+one_step+odesteer", "none")
    overhead, overhead_m = paired("odesteer", "one_step")
    floor, floor_m = paired("plain model, batch 3", "plain model, batch 1")
    target = preset["target"]
    print("\nratios: median of the per-round ratios (ratio of the medians in brackets)")
    print(
        f"three arms batched / unsteered alone: {batched:.2f}x ({batched_m:.2f}x) (target <= 1.5) "
        f"{'PASS' if batched <= 1.5 else 'FAIL'}"
    )
    print(
        f"ODESteer alone / one-step alone: {overhead:.3f}x ({overhead_m:.3f}x) (target <= {target}) "
        f"{'PASS' if overhead <= target else 'FAIL'}"
    )
    print(
        f"plain model, no hook, batch 3 / batch 1: {floor:.2f}x ({floor_m:.2f}x) "
        "(the floor of the batched ratio)"
    )


if __name__ == "__main__":
    main()
