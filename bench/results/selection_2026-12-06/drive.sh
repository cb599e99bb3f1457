#!/usr/bin/env bash
# candidates then raw scores, four tasks at a time, so a cut-off session keeps both
cd /work/main
ARMS='{"greedy": {}, "dfs": {"generator": "dfs"}, "sampling": {"generator": "sampling", "temperature": 1.0}}'
for n in 4 8 12 16 20 24 28 32 36; do
  .venv/bin/python bench/candidates.py --n-tasks $n --output-dir outputs/selection_candidates --arms "$ARMS" || exit 1
  .venv/bin/python bench/selection.py --candidates outputs/selection_candidates --n-tasks $n --arms greedy dfs sampling || exit 1
done
