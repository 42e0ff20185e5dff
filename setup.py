"""Packaging for the Anchor Embedding reference implementation.

The distribution is called ``anchor-llm2vec`` so that it does not clash with
the ``llm2vec`` project on PyPI; the import package is still ``llm2vec``.

torch is deliberately left unpinned (only a lower bound): machines with a GPU
need a CUDA build, CPU-only machines should install a CPU wheel *before*
installing this package (``make install`` does exactly that).
"""

import os
import re

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def read_version() -> str:
    path = os.path.join(HERE, "llm2vec", "__init__.py")
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    match = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", text, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no __version__ found in {path}")
    return match.group(1)


def read_long_description() -> str:
    path = os.path.join(HERE, "README.md")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    return ""


INSTALL_REQUIRES = [
    "torch>=2.4",
    "transformers>=5.0,<6",
    "peft>=0.17",
    "accelerate>=1.10",
    "safetensors",
    "tokenizers",
    "numpy",
    "tqdm",
]

EXTRAS_REQUIRE = {
    # test runner plus the helpers used by the tests and the demo scripts
    "dev": [
        "pytest",
        "gguf",
        "gensim",
        "matplotlib",
    ],
    # MTEB evaluation
    "eval": [
        "mteb>=2.0,<3",
        "sentence-transformers>=5",
        "matplotlib",
    ],
    # GPU-only: flash-attn needs CUDA to build; deepspeed for ZeRO-3
    "gpu": [
        "flash-attn>=2.6",
        "deepspeed",
    ],
}

setup(
    name="anchor-llm2vec",
    version=read_version(),
    description=(
        "Anchor Embedding: training LLMs to be better text embedders "
        "through bidirectional reconstruction"
    ),
    long_description=read_long_description(),
    long_description_content_type="text/markdown",
    license="MIT",
    packages=find_packages(include=["llm2vec*"]),
    # data the library reads with importlib.resources: Table 13's instructions, the paper's tables
    package_data={
        "llm2vec.evaluation": ["data/*.json"],
        "llm2vec.reporting": ["data/paper_results/*.json"],
    },
    python_requires=">=3.10",
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    classifiers=[
        "Programming Language :: Python :: 3",
        "Intended Audience :: Science/Research",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
