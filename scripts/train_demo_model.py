"""Train the small demo chat model shipped in ``odesteer_core/lm/demo_model/``.

From the committed corpus (``data/demo_corpus``, built by ``scripts/build_demo_corpus.py``), with a
fixed seed, this trains a byte-level BPE tokenizer with a chat template, then a stock
``LlamaForCausalLM`` of a few million parameters on the chat-formatted corpus (loss on all
tokens, AdamW with a cosine schedule, two CPU threads). It writes the model folder (float16
safetensors, tokenizer, generation config, ``training_report.json``) and the loss curve PNG::

    python scripts/train_demo_model.py            # about 50 minutes on a quiet 2-core CPU

The number of steps is fixed (``--steps``, 9000), so a run is reproducible from the seed; a run
that takes more than twice ``--minutes`` (a much slower or busy machine) stops there, and the
report says so. ``--steps 0`` schedules by time instead (``--minutes``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import platform
import random
import time
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers  # noqa: E402
from transformers import (  # noqa: E402
    GenerationConfig,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "data" / "demo_corpus"
MODEL_DIR = ROOT / "odesteer_core" / "lm" / "demo_model"
CURVE = ROOT / "assets" / "demo_model" / "loss_curve.png"
SEED = 1234

BOS, EOS, PAD = "<s>", "<|end|>", "<pad>"
ROLES = ["<|system|>", "<|user|>", "<|assistant|>"]
# Each turn: "<|role|>\n" + content + "<|end|>"; the generation prompt opens an assistant turn,
# so generation stops at the end-of-turn token, which is also the eos token.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('roles must be system, user or assistant') }}"
    "{% endif %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] | trim + eos_token }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)


def read_jsonl_gz(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def train_tokenizer(texts: Sequence[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE with bos/eos/pad, role tokens and the chat template."""
    special = [BOS, EOS, PAD, *ROLES]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer)
    bpe.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bpe.token_to_id(BOS))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        extra_special_tokens=ROLES,
        chat_template=CHAT_TEMPLATE,
        clean_up_tokenization_spaces=False,
        model_max_length=512,
        padding_side="left",
    )


def encode(tok: PreTrainedTokenizerFast, rows: Sequence[dict], max_len: int) -> list[list[int]]:
    texts = [tok.apply_chat_template(r["messages"], tokenize=False) for r in rows]
    ids = tok(texts, add_special_tokens=False)["input_ids"]
    return [x[:max_len] for x in ids]


def batches(seqs: list[list[int]], size: int, rng: random.Random) -> list[list[int]]:
    """Index batches of similar length (less padding), in random order."""
    order = list(range(len(seqs)))
    rng.shuffle(order)
    out = []
    chunk = size * 50
    for i in range(0, len(order), chunk):
        part = sorted(order[i : i + chunk], key=lambda j: len(seqs[j]))
        out += [part[k : k + size] for k in range(0, len(part), size)]
    rng.shuffle(out)
    return out


def collate(seqs: list[list[int]], idx: list[int], pad_id: int) -> dict[str, torch.Tensor]:
    longest = max(len(seqs[i]) for i in idx)
    ids = torch.full((len(idx), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(idx), longest), dtype=torch.long)
    for row, i in enumerate(idx):
        ids[row, : len(seqs[i])] = torch.tensor(seqs[i])
        mask[row, : len(seqs[i])] = 1
    labels = ids.masked_fill(mask == 0, -100)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


@torch.no_grad()
def evaluate(model: LlamaForCausalLM, seqs: list[list[int]], pad_id: int, size: int = 64) -> float:
    """Mean loss per predicted token (token-weighted) over `seqs`."""
    model.eval()
    total, count = 0.0, 0
    order = sorted(range(len(seqs)), key=lambda j: len(seqs[j]))
    for k in range(0, len(order), size):
        b = collate(seqs, order[k : k + size], pad_id)
        n = int((b["labels"][:, 1:] != -100).sum())
        total += float(model(**b).loss) * n
        count += n
    model.train()
    return total / max(count, 1)


def lr_at(step: int, progress: float, peak: float, warmup: int, floor: float = 0.1) -> float:
    """Linear warmup over `warmup` steps, then cosine from `peak` to `floor * peak`."""
    if step < warmup:
        return peak * (step + 1) / warmup
    t = min(1.0, max(0.0, progress))
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))


class ThreadChooser:
    """Use whichever of 1 or 2 threads trains faster right now.

    On a 2-core machine that another process is also using, one thread is often twice as fast
    as two (the second thread keeps waiting for a busy core); on an idle machine two win. Each
    choice is timed for `probe` steps, every `every` steps, and sooner when steps get much slower
    than when the choice was made. Only the speed changes: the run is the same up to
    floating-point summation order.
    """

    def __init__(self, choices: Sequence[int], every: int = 100, probe: int = 4) -> None:
        self.choices, self.every, self.probe = list(choices), every, probe
        self.current = self.choices[-1]
        self.timing: dict[int, list[float]] = {c: [] for c in self.choices}
        self.used: dict[int, int] = dict.fromkeys(self.choices, 0)
        self.probe_at = 0  # step where the current probe started
        self.reference = float("inf")  # seconds per token of the current choice when chosen
        self.recent: list[float] = []
        torch.set_num_threads(self.current)

    def _probing(self, step: int) -> bool:
        return len(self.choices) > 1 and step - self.probe_at < len(self.choices) * self.probe

    def before(self, step: int) -> int:
        """The thread count for `step`."""
        if len(self.choices) > 1:
            phase = step - self.probe_at
            if self._probing(step):
                want = self.choices[phase // self.probe]
            else:
                if phase == len(self.choices) * self.probe:
                    self.current = min(self.choices, key=lambda c: _median(self.timing[c]))
                    self.reference = _median(self.timing[self.current])
                    self.timing = {c: [] for c in self.choices}
                    self.recent = []
                want = self.current
            torch.set_num_threads(want)
        return torch.get_num_threads()

    def after(self, threads: int, step: int, seconds: float, tokens: int) -> None:
        self.used[threads] += 1
        per_token = seconds / max(tokens, 1)
        if self._probing(step):
            self.timing[threads].append(per_token)
            return
        self.recent = [*self.recent[-7:], per_token]
        slow = len(self.recent) == 8 and _median(self.recent) > 1.6 * self.reference
        if step + 1 - self.probe_at >= self.every or slow:
            self.probe_at = step + 1


def _median(xs: list[float]) -> float:
    return sorted(xs)[len(xs) // 2] if xs else float("inf")


def plot_curve(path: Path, train: list[tuple[int, float]], held: list[tuple[int, float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    ax.plot([s for s, _ in train], [v for _, v in train], lw=1, label="train (last 20 steps)")
    ax.plot([s for s, _ in held], [v for _, v in held], "o-", ms=3, label="held-out")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy per token (nats)")
    ax.set_yscale("log")
    ax.set_title("Demo model training loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--out", type=Path, default=MODEL_DIR)
    ap.add_argument("--curve", type=Path, default=CURVE)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--hidden", type=int, default=192)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--intermediate", type=int, default=512)
    ap.add_argument("--batch", type=int, default=32, help="conversations per step")
    ap.add_argument("--max-len", type=int, default=192, help="tokens per conversation, at most")
    ap.add_argument(
        "--minutes",
        type=float,
        default=50.0,
        help="time budget of the training loop; the cosine schedule follows the elapsed share",
    )
    ap.add_argument(
        "--steps",
        type=int,
        default=9000,
        help="train exactly this many steps (schedule by step count) instead of by time",
    )
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument(
        "--threads",
        choices=["auto", "1", "2"],
        default="2",
        help="torch threads; auto re-checks which of 1 and 2 is faster every 100 steps",
    )
    args = ap.parse_args(argv)

    t_start = time.time()
    torch.set_num_threads(2)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)

    train_rows = read_jsonl_gz(args.corpus / "train.jsonl.gz")
    held_rows = read_jsonl_gz(args.corpus / "heldout.jsonl.gz")
    print(f"corpus: {len(train_rows)} train / {len(held_rows)} held-out conversations", flush=True)

    tok = train_tokenizer(
        [m["content"] for r in train_rows for m in r["messages"]], vocab_size=args.vocab
    )
    train_ids = encode(tok, train_rows, args.max_len)
    held_ids = encode(tok, held_rows, args.max_len)
    n_train_tokens = sum(map(len, train_ids))
    print(f"tokenizer: {len(tok)} tokens; train corpus {n_train_tokens} tokens", flush=True)

    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=args.hidden,
        intermediate_size=args.intermediate,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.heads,
        max_position_embeddings=512,
        rope_theta=10000.0,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params / 1e6:.2f}M parameters", flush=True)

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.95),
    )
    pad_id = tok.pad_token_id
    held_probe = held_ids[:: max(1, len(held_ids) // 300)]  # a fixed subset for the curve
    threads = ThreadChooser([1, 2] if args.threads == "auto" else [int(args.threads)])
    plan: list[list[int]] = []
    train_curve: list[tuple[int, float]] = []
    held_curve: list[tuple[int, float]] = []
    recent: list[tuple[float, int]] = []  # (loss, predicted tokens) of the last steps
    tokens_seen, step, progress, stop_note = 0, 0, 0.0, None
    budget = args.minutes * 60
    t_loop = time.time()
    model.train()
    while progress < 1.0:
        if not plan:
            plan = batches(train_ids, args.batch, rng)
        b = collate(train_ids, plan.pop(), pad_id)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, progress, args.lr, args.warmup)
        n_threads = threads.before(step)
        t0 = time.time()
        loss = model(**b).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        n_tokens = int(b["attention_mask"].sum())
        threads.after(n_threads, step, time.time() - t0, n_tokens)
        tokens_seen += n_tokens
        recent.append((loss.item(), int((b["labels"][:, 1:] != -100).sum())))
        step += 1
        elapsed = time.time() - t_loop
        if args.steps:
            progress = step / args.steps
            if elapsed > 2 * budget:
                stop_note = f"stopped at step {step} of {args.steps}: twice over the time budget"
                progress = 1.0
        else:
            progress = elapsed / budget
        if step % 20 == 0:
            train_curve.append((step, sum(v * n for v, n in recent) / sum(n for _, n in recent)))
            recent = []
        if step % args.eval_every == 0 or progress >= 1.0:
            held_curve.append((step, evaluate(model, held_probe, pad_id)))
            print(
                f"step {step} ({progress:.0%}) train {train_curve[-1][1]:.3f} held-out "
                f"{held_curve[-1][1]:.3f} lr {opt.param_groups[0]['lr']:.2e} "
                f"tokens {tokens_seen} {elapsed / 60:.1f} min threads {threads.current}",
                flush=True,
            )
    if stop_note:
        print(stop_note, flush=True)
    train_minutes = (time.time() - t_loop) / 60
    # Same measurement as the held-out loss: eval mode, token-weighted, a train subset as large.
    train_probe = train_ids[:: max(1, len(train_ids) // len(held_ids))][: len(held_ids)]
    final_train = evaluate(model, train_probe, pad_id)
    held_loss = evaluate(model, held_ids, pad_id)
    print(f"held-out loss {held_loss:.4f}, perplexity {math.exp(held_loss):.3f}", flush=True)

    out = args.out  # files are overwritten; the model card (README.md) is kept
    out.mkdir(parents=True, exist_ok=True)
    model.to(torch.float16).save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    GenerationConfig(
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        max_new_tokens=64,
    ).save_pretrained(out)
    plot_curve(args.curve, train_curve, held_curve)
    report = {
        "seed": args.seed,
        "steps": step,
        "schedule": f"fixed {args.steps} steps" if args.steps else f"{args.minutes} minutes",
        "stop_note": stop_note,
        "thread_steps": {str(k): v for k, v in threads.used.items()},
        "batch_conversations": args.batch,
        "tokens_seen": tokens_seen,
        "train_corpus_tokens": n_train_tokens,
        "epochs": round(tokens_seen / n_train_tokens, 3),
        "parameters": n_params,
        "config": {
            k: getattr(config, k)
            for k in [
                "vocab_size",
                "hidden_size",
                "intermediate_size",
                "num_hidden_layers",
                "num_attention_heads",
                "max_position_embeddings",
                "tie_word_embeddings",
            ]
        },
        "optimizer": {
            "name": "AdamW",
            "peak_lr": args.lr,
            "betas": [0.9, 0.95],
            "weight_decay": 0.1,
            "warmup_steps": args.warmup,
            "schedule": "cosine to 10% of peak",
            "grad_clip": 1.0,
        },
        "final_train_loss": round(final_train, 4),
        "heldout_loss": round(held_loss, 4),
        "heldout_perplexity": round(math.exp(held_loss), 3),
        "heldout_conversations": len(held_ids),
        "heldout_tokens": sum(map(len, held_ids)),
        "train_minutes": round(train_minutes, 1),
        "wall_minutes": round((time.time() - t_start) / 60, 1),
        "threads": args.threads,
        "torch": torch.__version__,
        "transformers": __import__("transformers").__version__,
        "machine": platform.processor() or platform.machine(),
        "loss_curve": {"train": train_curve, "heldout": held_curve},
    }
    (out / "training_report.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "loss_curve"}, indent=1))


if __name__ == "__main__":
    main()
