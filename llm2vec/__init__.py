"""Anchor Embedding: training LLMs to be better text embedders through bidirectional
reconstruction (reference implementation, package ``llm2vec``)."""

__version__ = "0.1.0"

from llm2vec.llm2vec import LLM2Vec  # noqa: E402
from llm2vec.llm2vec_q2d_d2q import LLM2Vec_q2d_d2q  # noqa: E402

__all__ = ["LLM2Vec", "LLM2Vec_q2d_d2q", "__version__"]
