"""Is the demo model's text readable English, and does it mix polarities when unsteered?

Loads ``odesteer_core/lm/demo_model`` with plain ``transformers``, answers the held-out evaluation
prompts (``data/demo_corpus/eval_prompts.json``, unseen in training) through the chat template,
greedily and by sampling (temperature 0.7, top-p 0.9, several seeds), and prints:

* the share of words that are dictionary words. Words are the lower-cased alphabetic tokens
  (regex ``[a-z]+(?:'[a-z]+)*``, so digits and punctuation are not words and ``well-kept`` is two
  words); a word counts when it is in Debian's ``wamerican`` list
  (``/usr/share/dict/american-english``, lower-cased), or when it is a contraction whose parts are
  (``we'd`` = ``we`` + ``d``). British spellings (``colour``) count as misses;
* the mean VADER compound score (``vaderSentiment``) of the replies to the sentiment prompts,
  with its spread and the shares of positive (> 0.05) and negative (< -0.05) replies;
* a few sample replies.

    python benchmarks/demo_model_text.py [--seeds 0 1 2 3 4] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "odesteer_core" / "lm" / "demo_model"
PROMPTS = ROOT / "data" / "demo_corpus" / "eval_prompts.json"
DICT = Path("/usr/share/dict/american-english")
WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")
CLITICS = {"s", "t", "d", "ll", "re", "ve", "m"}


def load_words(path: Path) -> set[str]:
    if not path.is_file():
        raise SystemExit(f"{path} not found: apt-get install wamerican")
    return {w.strip().lower() for w in path.read_text(encoding="utf-8").splitlines() if w.strip()}


def dictionary_share(texts: Sequence[str], words: set[str]) -> tuple[float, int, Counter[str]]:
    """(share of dictionary words, number of words, the misses) over `texts`."""
    hits, total, misses = 0, 0, Counter()
    for text in texts:
        for w in WORD.findall(text.lower()):
            total += 1
            parts = w.split("'")
            if w in words or all(p in words or (i and p in CLITICS) for i, p in enumerate(parts)):
                hits += 1
            else:
                misses[w] += 1
    return hits / max(total, 1), total, misses


@torch.no_grad()
def reply(model, tok, prompt: str, max_new: int, seed: int | None) -> tuple[str, bool]:
    """The model's reply to `prompt` and whether it ended with the end-of-turn token."""
    text = tok.apply_chat_template(
        [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
    )
    ids = tok(text, add_special_tokens=False, return_tensors="pt")
    sample = seed is not None
    if sample:
        torch.manual_seed(seed)
    out = model.generate(
        **ids,
        max_new_tokens=max_new,
        do_sample=sample,
        temperature=0.7 if sample else None,
        top_p=0.9 if sample else None,
        top_k=0 if sample else None,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
    )
    new = out[0, ids["input_ids"].shape[1] :]
    ended = bool(len(new)) and int(new[-1]) == tok.eos_token_id
    return tok.decode(new, skip_special_tokens=True).strip(), ended


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=MODEL)
    ap.add_argument("--prompts", type=Path, default=PROMPTS)
    ap.add_argument("--dict", type=Path, default=DICT)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--show", type=int, default=8, help="sample replies to print")
    ap.add_argument("--json", type=Path, help="also write all replies and numbers here")
    args = ap.parse_args(argv)

    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    torch.set_num_threads(2)
    words = load_words(args.dict)
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
    entries = json.loads(args.prompts.read_text(encoding="utf-8"))["prompts"]
    print(
        f"model {args.model.name}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M "
        f"parameters; {len(entries)} held-out prompts; seeds {args.seeds}"
    )

    t0 = time.time()
    rows = []
    for e in entries:
        greedy, g_end = reply(model, tok, e["prompt"], args.max_new_tokens, None)
        sampled = [reply(model, tok, e["prompt"], args.max_new_tokens, s) for s in args.seeds]
        rows.append(
            {
                **e,
                "greedy": greedy,
                "greedy_ended": g_end,
                "sampled": [t for t, _ in sampled],
                "sampled_ended": [x for _, x in sampled],
            }
        )
    seconds = time.time() - t0

    greedy_texts = [r["greedy"] for r in rows]
    sampled_texts = [t for r in rows for t in r["sampled"]]
    g_share, g_n, g_miss = dictionary_share(greedy_texts, words)
    s_share, s_n, s_miss = dictionary_share(sampled_texts, words)
    ended = [r["greedy_ended"] for r in rows] + [x for r in rows for x in r["sampled_ended"]]
    print(
        f"\n{len(greedy_texts) + len(sampled_texts)} replies in {seconds:.0f} s; "
        f"{sum(ended) / len(ended):.0%} ended with the end-of-turn token"
    )
    print(f"dictionary words, greedy:  {g_share:.1%} of {g_n} words")
    print(f"dictionary words, sampled: {s_share:.1%} of {s_n} words")
    misses = (g_miss + s_miss).most_common(15)
    print("most common non-dictionary words:", ", ".join(f"{w} ({n})" for w, n in misses))

    vader = SentimentIntensityAnalyzer()
    senti = [r for r in rows if r["concept"] == "sentiment"]
    scores = [vader.polarity_scores(t)["compound"] for r in senti for t in r["sampled"]]
    g_scores = [vader.polarity_scores(r["greedy"])["compound"] for r in senti]
    pos = sum(s > 0.05 for s in scores) / len(scores)
    neg = sum(s < -0.05 for s in scores) / len(scores)
    mixed = sum(
        any(vader.polarity_scores(t)["compound"] > 0.05 for t in r["sampled"])
        and any(vader.polarity_scores(t)["compound"] < -0.05 for t in r["sampled"])
        for r in senti
    )
    print(
        f"\nVADER compound, sampled replies to the {len(senti)} sentiment prompts "
        f"({len(scores)} replies): mean {statistics.mean(scores):+.3f}, "
        f"sd {statistics.pstdev(scores):.3f}; positive {pos:.0%}, negative {neg:.0%}, "
        f"neutral {1 - pos - neg:.0%}; {mixed}/{len(senti)} prompts got both"
    )
    print(f"VADER compound, greedy replies: mean {statistics.mean(g_scores):+.3f}")

    print("\nSample replies (greedy | one sampled):")
    step = max(1, len(rows) // max(1, args.show))
    for r in rows[::step][: args.show]:
        print(
            f"  [{r['concept']}] {r['prompt']}\n    greedy:  {r['greedy']}\n"
            f"    sampled: {r['sampled'][0]}"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "dictionary_share": {"greedy": g_share, "sampled": s_share},
                    "vader_sampled": {
                        "mean": statistics.mean(scores),
                        "sd": statistics.pstdev(scores),
                        "positive": pos,
                        "negative": neg,
                    },
                    "replies": rows,
                },
                indent=1,
                ensure_ascii=False,
            )
            + "\n",
            encoding="utf-8",
        )


if __name__ == "__main__":
    main()
