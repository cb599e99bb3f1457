#!/usr/bin/env bash
# after drive.sh: the search at greedy's time (dfs6) on the same adapters, its raw scores, then the tiny-task bench
cd /work/main
while pgrep -f outputs/drive.sh > /dev/null; do sleep 20; done
.venv/bin/python bench/candidates.py --n-tasks 36 --output-dir outputs/selection_candidates \
  --arms '{"dfs6": {"generator": "dfs", "predictions_per_test_input": 6}}' || exit 1
.venv/bin/python bench/selection.py --candidates outputs/selection_candidates --n-tasks 36 --arms greedy dfs6 dfs sampling || exit 1
