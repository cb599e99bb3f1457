"""`python tests/batch_probe.py <fine-tuning flags>`: arc24_lib.training's command line, with every batch
the collator builds recorded to <output_dir>/batches_rank<RANK>.jsonl (a crc32 per sample), so a test can
see which samples each process trained on. Run under `accelerate launch` by test_training.py."""

import json
import os
import sys
import zlib
from pathlib import Path

from arc24_lib import samples, training


def main() -> None:
    output_dir = Path(sys.argv[sys.argv.index("--output_dir") + 1])
    output_dir.mkdir(parents=True, exist_ok=True)
    record = output_dir / f"batches_rank{os.environ.get('RANK', '0')}.jsonl"
    collate = samples.PadCollator.__call__

    def recording_collate(self, batch):
        with open(record, "a") as file:
            file.write(json.dumps([zlib.crc32(json.dumps(s["input_ids"]).encode()) for s in batch]) + "\n")
        return collate(self, batch)

    samples.PadCollator.__call__ = recording_collate
    training.main(sys.argv[1:])


if __name__ == "__main__":
    main()
