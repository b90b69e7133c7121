#!/usr/bin/env bash
# The main job on the embedded defaults: set up if needed, index a corpus, answer a question.
#   scripts/demo.sh [CORPUS] [QUESTION]
# CORPUS defaults to $HEA_RAG_CORPUS, else the project's own sample notes. Each corpus gets its own
# index folder, $HEA_RAG_DEMO_DIR/<corpus name> (default runs/demo; $HEA_RAG_INDEX overrides), so the sample notes never sit beside
# real papers. The answering model is $HEA_RAG_MODEL, default the embedded smollm2-135m preset, so
# everything runs offline (the first run converts it once, ~25 s).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
corpus=${1:-${HEA_RAG_CORPUS:-scripts/sample_corpus.jsonl}}
question=${2:-"What is the yield strength of NbMoTaW at 1600 °C?"}
name=$(basename "$corpus")
index=${HEA_RAG_INDEX:-${HEA_RAG_DEMO_DIR:-runs/demo}/${name%.*}}
.venv/bin/hea-rag index "$corpus" --index "$index"
echo "== ask: $question" >&2
.venv/bin/hea-rag ask "$question" --index "$index" --model "${HEA_RAG_MODEL:-smollm2-135m}"
echo "== more questions: .venv/bin/hea-rag ask \"...\" --index $index --model ${HEA_RAG_MODEL:-smollm2-135m}" >&2
