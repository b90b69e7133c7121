#!/usr/bin/env bash
# Rebuild the adapter that ships for the embedded model (hea_rag/adapters/smollm2-135m), exactly
# as it was built: `hea-rag finetune` itself, on dev_qa `train` plus the upstream QA pairs, over an
# index of the shared corpus WITHOUT the 20 `heldout` abstracts, and without the upstream pairs
# that heldout holds (scripts/without_heldout.py): nothing of heldout reaches training.
# Same seed, same data, same code: the same recipe.
#   scripts/build_default_adapter.sh [OUTPUT]     (about 30 minutes on 2 idle CPU cores)
# HEA_RAG_ADAPTER_NEGATIVES=0 builds the same recipe without taught abstention (the benchmark's
# comparison); HEA_RAG_ADAPTER_WORK moves the scratch folder (index and filtered corpus).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
shared=${HEA_RAG_SHARED:-../shared}
out=${1:-hea_rag/adapters/smollm2-135m}
work=${HEA_RAG_ADAPTER_WORK:-runs/default-adapter}
steps=${HEA_RAG_ADAPTER_STEPS:-100}
negatives=${HEA_RAG_ADAPTER_NEGATIVES:-0.3}
mkdir -p "$work"
.venv/bin/python scripts/without_heldout.py "$shared" "$work"
rm -rf "$work/index"
.venv/bin/hea-rag index "$work/corpus.csv" --index "$work/index"
.venv/bin/hea-rag finetune "$shared/bench/dev_qa.jsonl" "$work/upstream_qa.jsonl" \
  --model smollm2-135m --index "$work/index" --output "$out" --max-steps "$steps" \
  --batch-size 4 --eval-fraction 0 --negatives "$negatives" --seed 0 --no-resume \
  --no-gradient-checkpointing
cat >> "$out/README.md" <<CARD

## Recipe

Built by \`scripts/build_default_adapter.sh\` (hea-rag commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)):
dev_qa \`train\` and the upstream QA pairs, over an index of the shared corpus without the dev_qa
\`heldout\` abstracts and without the upstream pairs that heldout holds (\`scripts/without_heldout.py\`).
Its answers and refusals on \`heldout\` are measured by \`scripts/bench_abstention.py\`.
CARD
# resumable state of the run, and the tokenizer (the GGUF carries its own): not part of the adapter
rm -rf "$out/checkpoints" "$out/tokenizer.json" "$out/tokenizer_config.json" "$out/chat_template.jinja"
