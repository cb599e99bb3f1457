#!/usr/bin/env bash
# issue 34's fresh fixed candidate sets, four tasks at a time, so a cut-off session keeps both stages:
#   dev3 (training ranks 37-48): bash drive_set.sh 36 outputs/selection_dev3
#   dev4 (training ranks 49-60): bash drive_set.sh 48 outputs/selection_dev4
FROM_RANK=$1 FOLDER=$2
cd /work/main
ARMS='{"greedy": {}, "dfs6": {"generator": "dfs", "predictions_per_test_input": 6}}'
for n in 4 8 12; do
  .venv/bin/python bench/candidates.py --from-rank "$FROM_RANK" --n-tasks $n --output-dir "$FOLDER" --arms "$ARMS" || exit 1
  .venv/bin/python bench/selection.py --candidates "$FOLDER" --n-tasks $((FROM_RANK + n)) --arms greedy dfs6 || exit 1
done
