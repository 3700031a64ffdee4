#!/usr/bin/env bash
# A small but real slice of the paper's protocol, end to end, on GPUs with network access:
# LIMIT prompts per test split of every task on Qwen/Qwen2.5-0.5B-Instruct, every method, the
# paper's TruthfulQA judges and small stand-ins for the other judges; then a rerun into the same
# folder, which must finish in seconds (nothing is recomputed), and the tables.
#
#   bash scripts/gpu_reproduce_slice.sh                 # every GPU of this machine
#   NPROC=1 LIMIT=20 bash scripts/gpu_reproduce_slice.sh
#   JIGSAW_CSV=all_data.csv bash scripts/gpu_reproduce_slice.sh   # adds the toxicity task
#
# Jigsaw (the toxicity fit data) is a Kaggle download, not on the Hub:
#   kaggle competitions download -c jigsaw-unintended-bias-in-toxicity-classification
# Without JIGSAW_CSV the toxicity task is left out. Downloads on first use: the model (1 GB),
# the TruthfulQA judges (2 x 13 GB), the small reward model, GPT-2 and the toxicity classifier.
set -euo pipefail

MODEL=${MODEL:-Qwen/Qwen2.5-0.5B-Instruct}
OUT=${OUT:-runs/slice-$(basename "$MODEL")}
LIMIT=${LIMIT:-50}
FIT_LIMIT=${FIT_LIMIT:-2000}
NPROC=${NPROC:-$(python -c "import torch; print(max(torch.cuda.device_count(), 1))")}
TASKS=truthfulqa-mc,truthfulqa-gen,ultrafeedback
DATA=()
if [[ -n "${JIGSAW_CSV:-}" ]]; then
    TASKS="$TASKS,toxicity"
    DATA+=(--jigsaw-csv "$JIGSAW_CSV")
fi

ARGS=(
    reproduce --model "$MODEL" --out "$OUT" --tasks "$TASKS"
    --limit "$LIMIT" --fit-limit "$FIT_LIMIT" --strengths 0.2 --dtype float32 ${DATA[@]+"${DATA[@]}"}
    --reward-judge "${REWARD_JUDGE:-Skywork/Skywork-Reward-V2-Qwen3-0.6B}"
    --perplexity-judge "${PPL_JUDGE:-openai-community/gpt2}"
    --toxicity-judge "${TOX_JUDGE:-s-nlp/roberta_toxicity_classifier}"
    --json
)

echo "== first run: $NPROC process(es), $LIMIT prompts per split, into $OUT" >&2
start=$(date +%s)
torchrun --nproc_per_node "$NPROC" -m odesteer_core "${ARGS[@]}" | tail -n 1
first=$(( $(date +%s) - start ))

echo "== rerun into the same folder (must recompute nothing)" >&2
start=$(date +%s)
python -m odesteer_core "${ARGS[@]}" --quiet | tail -n 1
rerun=$(( $(date +%s) - start ))

echo "first run ${first}s, rerun ${rerun}s" >&2
cat "$OUT/results.md"
