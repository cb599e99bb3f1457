"""Token budget of full training prompts per encoder, with the embedded SmolLM2 tokenizer.

For each dataset and encoder: tokens per prompt (median, p90, max) and the share of test
prompts that fit 2048/4096/8192 tokens as they are, and after trimming train pairs.
Run: .venv/bin/python bench/token_budget.py [--datasets ...] [--prompt-version ...]
"""

import argparse
import time

import numpy as np
from tqdm import tqdm

ENCODERS = {
    "minimal": "MinimalGridEncoder()",
    "shape+row-numbers (default)": "GridShapeEncoder(RowNumberEncoder(MinimalGridEncoder()))",
    "shape+minimal": "GridShapeEncoder(MinimalGridEncoder())",
    "code-block+minimal": "GridCodeBlockEncoder(MinimalGridEncoder())",
}
MAX_LENGTHS = (2048, 4096, 8192)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["arc-agi-1/evaluation", "arc-agi-2/evaluation"])
    parser.add_argument("--prompt-version", default="output-from-examples-v2")
    args = parser.parse_args()

    from arc24_lib.data import load_builtin
    from arc24_lib.encoders import parse_encoder
    from arc24_lib.models import load_tokenizer
    from arc24_lib.prompting import count_tokens, create_prompt, fit_prompt

    tokenizer = load_tokenizer("embedded")
    start = time.perf_counter()
    header = ("| dataset | encoder | prompts | median | p90 | max | "
              + " | ".join(f"fit {n}" for n in MAX_LENGTHS) + " | "
              + " | ".join(f"fit {n} trimmed" for n in MAX_LENGTHS) + " |")
    rows = [header, "|" + "---|" * (header.count("|") - 1)]
    for name in args.datasets:
        dataset = load_builtin(name)
        for label, encoder_text in ENCODERS.items():
            encoder = parse_encoder(encoder_text)
            lengths, trimmed_fits = [], {n: 0 for n in MAX_LENGTHS}
            items = [(task, i) for task in dataset for i in range(len(task.test))]
            for task, i in tqdm(items, desc=f"{name} {label}", leave=False):
                length = count_tokens(tokenizer, create_prompt(task, encoder, args.prompt_version, tokenizer, i))
                lengths.append(length)
                for n in MAX_LENGTHS:
                    fits = length <= n or fit_prompt(task, encoder, args.prompt_version, tokenizer, n, i)[0]
                    trimmed_fits[n] += bool(fits)
            lengths = np.array(lengths)
            fit = " | ".join(f"{np.mean(lengths <= n):.1%}" for n in MAX_LENGTHS)
            fit_trimmed = " | ".join(f"{trimmed_fits[n] / len(lengths):.1%}" for n in MAX_LENGTHS)
            rows.append(f"| {name} | {label} | {len(lengths)} | {np.median(lengths):.0f} | "
                        f"{np.percentile(lengths, 90):.0f} | {lengths.max()} | {fit} | {fit_trimmed} |")
            print(rows[-1], flush=True)
    print(f"\nprompt version {args.prompt_version}, tokenizer SmolLM2-135M-Instruct, "
          f"{time.perf_counter() - start:.0f} s\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
