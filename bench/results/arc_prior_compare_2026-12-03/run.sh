#!/bin/bash
# The command behind these results (issue 21): the ARC prior against the raw model, both starts in one run.
# Run from the repository root; a rerun into the same outputs goes on where it stopped.
A=bench/results/arc_prior_2026-12-02/adapter
SETS=bench/results/arc_prior_2026-12-02/dev_sets.json
FIRST=$(.venv/bin/python -c "import json; print(' '.join(json.load(open('$SETS'))['dev'][:12]))")
IDS=$(.venv/bin/python -c "import json; d = json.load(open('$SETS'))
print(' '.join(x for pair in zip(d['dev'][12:], d['dev2']) for x in pair))")  # dev 13-24 and dev2, interleaved
.venv/bin/python bench/tiny_tasks.py --task-ids $FIRST --output-dir outputs/prior_compare_first12 \
  --arms "{\"raw0\": {\"budget_s\": 0}, \"prior0\": {\"budget_s\": 0, \"test_time\": {\"adapter_path\": \"$A\"}}}"
.venv/bin/python bench/tiny_tasks.py --task-ids $IDS --output-dir outputs/prior_compare \
  --arms "{\"prior\": {\"test_time\": {\"adapter_path\": \"$A\"}}, \"raw\": {}, \"prior0\": {\"budget_s\": 0,
  \"test_time\": {\"adapter_path\": \"$A\"}}, \"raw0\": {\"budget_s\": 0}}"
# the first 12 with test-time training, both starts in one run (their first comparison was two runs a day apart)
.venv/bin/python bench/tiny_tasks.py --task-ids $FIRST --output-dir outputs/prior_compare_first12_ttt \
  --arms "{\"prior\": {\"test_time\": {\"adapter_path\": \"$A\"}}, \"raw\": {}}"
