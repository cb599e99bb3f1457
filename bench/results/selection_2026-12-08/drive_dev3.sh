#!/usr/bin/env bash
# issue 34's third fixed candidate set (training ranks 37-48), four tasks at a time, so a cut-off session keeps both
cd /work/main
ARMS='{"greedy": {}, "dfs6": {"generator": "dfs", "predictions_per_test_input": 6}}'
for n in 4 8 12; do
  .venv/bin/python bench/candidates.py --from-rank 36 --n-tasks $n --output-dir outputs/selection_dev3 --arms "$ARMS" || exit 1
  .venv/bin/python bench/selection.py --candidates outputs/selection_dev3 --n-tasks $((36 + n)) --arms greedy dfs6 || exit 1
done
