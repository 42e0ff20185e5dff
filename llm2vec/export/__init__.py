"""Exporting trained LLM2Vec encoders to other formats."""

from llm2vec.export.sentence_transformers_export import (
    ExportError,
    ExportReport,
    export_sentence_transformers,
)

__all__ = ["ExportError", "ExportReport", "export_sentence_transformers"]
