#!/usr/bin/env bash
# Rebuild the adapter that ships for the embedded model (hea_rag/adapters/smollm2-135m), exactly
# as it was built: `hea-rag finetune` itself, on dev_qa `train`, the upstream QA pairs and the
# pairs `hea-rag synth` makes from the indexed abstracts, over an index of the shared corpus
# WITHOUT the 20 `heldout` abstracts, and without the upstream pairs that heldout holds
# (scripts/without_heldout.py): nothing of heldout reaches training.
# Same seed, same data, same code: the same recipe.
#   scripts/build_default_adapter.sh [OUTPUT]
# Two stages, which may run on two machines:
#   prepare  grounds the QA pairs in the index (negatives included) and writes the exact training
#            examples to $work/examples/ (`finetune --save-examples`; CPU, a few minutes);
#   train    trains 600 steps of 4 on them (`finetune` on the prepared files; no index needed).
#            The shipped adapter was trained on a CUDA GPU (bf16, 3 minutes on an H200); on 2 CPU
#            cores 600 steps take about 3 hours.
# HEA_RAG_ADAPTER_STAGE=prepare|train runs one stage (default: both). Other knobs:
# HEA_RAG_ADAPTER_NEGATIVES (0: the same recipe without taught abstention), HEA_RAG_ADAPTER_STEPS
# (600; 0 trains one whole epoch), HEA_RAG_ADAPTER_SYNTH=0 (without the synth pairs: the upstream
# recipe scripts/bench_synth.py compares), HEA_RAG_ADAPTER_WORK (scratch folder), HEA_RAG (the
# hea-rag command; default .venv/bin/hea-rag),
# HEA_RAG_COMMIT (the commit named on the card, where the checkout has no .git).
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${HEA_RAG_SHARED:-../shared}
out=${1:-hea_rag/adapters/smollm2-135m}
work=${HEA_RAG_ADAPTER_WORK:-runs/default-adapter}
stage=${HEA_RAG_ADAPTER_STAGE:-all}
steps=${HEA_RAG_ADAPTER_STEPS:-600}
negatives=${HEA_RAG_ADAPTER_NEGATIVES:-0.3}
hea_rag=${HEA_RAG:-.venv/bin/hea-rag}
qa_files=("$shared/bench/dev_qa.jsonl" "$work/upstream_qa.jsonl")
[[ ${HEA_RAG_ADAPTER_SYNTH:-1} == 1 ]] && qa_files+=("$work/synth.jsonl")

if [[ $stage == all || $stage == prepare ]]; then
  bash scripts/setup.sh
  mkdir -p "$work/examples"
  .venv/bin/python scripts/without_heldout.py "$shared" "$work"
  rm -rf "$work/index"
  "$hea_rag" index "$work/corpus.csv" --index "$work/index"
  "$hea_rag" synth --index "$work/index" -o "$work/synth.jsonl"
  for qa in "${qa_files[@]}"; do
    "$hea_rag" finetune "$qa" --model smollm2-135m --index "$work/index" \
      --negatives "$negatives" --seed 0 --save-examples "$work/examples/$(basename "$qa")"
  done
fi
[[ $stage == prepare ]] && exit 0

examples=()
for qa in "${qa_files[@]}"; do examples+=("$work/examples/$(basename "$qa")"); done
length=(--max-steps "$steps")
[[ $steps == 0 ]] && length=(--epochs 1)
"$hea_rag" finetune "${examples[@]}" --model smollm2-135m --output "$out" "${length[@]}" \
  --batch-size 4 --eval-fraction 0 --negatives "$negatives" --seed 0 --no-resume \
  --no-gradient-checkpointing --quantize none
cat >> "$out/README.md" <<CARD

## Recipe

Built by \`scripts/build_default_adapter.sh\` (hea-rag commit ${HEA_RAG_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}):
dev_qa \`train\`, the upstream QA pairs and \`hea-rag synth\` pairs, over an index of the shared
corpus without the dev_qa \`heldout\` abstracts and without the upstream pairs that heldout holds
(\`scripts/without_heldout.py\`), grounded and written as training examples first
(\`finetune --save-examples\`), then trained on them. Its answers and refusals on \`heldout\` are
measured by \`scripts/bench_abstention.py\`, its answers to natural questions by \`scripts/bench_synth.py\`.
CARD
# resumable state of the run, and the tokenizer (the GGUF carries its own): not part of the adapter
rm -rf "$out/checkpoints" "$out/tokenizer.json" "$out/tokenizer_config.json" "$out/chat_template.jinja"
