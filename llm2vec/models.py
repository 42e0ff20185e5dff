"""The model class names llm2vec users import (``from llm2vec.models import LlamaBiModel``).

llm2vec rewrote each family's attention to make it bidirectional. In transformers 5 every family
reads one switch, ``is_causal`` on the config and on each attention module, so each name here is
the transformers class with that switch off after construction (:func:`set_bidirectional_attention`),
nothing more: ``LlamaBiModel.from_pretrained(path)`` loads the weights as ``LlamaModel`` does and
attends both ways. The ``*BiForMNTP`` names are the causal-LM classes with the same switch, the
body that llm2vec's masked next-token prediction trains.
"""

from __future__ import annotations

from typing import Any

from transformers import (
    GemmaForCausalLM,
    GemmaModel,
    LlamaForCausalLM,
    LlamaModel,
    MistralForCausalLM,
    MistralModel,
    Qwen2ForCausalLM,
    Qwen2Model,
)

from llm2vec.llm2vec import set_bidirectional_attention

__all__ = [
    "GemmaBiForMNTP",
    "GemmaBiModel",
    "LlamaBiForMNTP",
    "LlamaBiModel",
    "MistralBiForMNTP",
    "MistralBiModel",
    "Qwen2BiForMNTP",
    "Qwen2BiModel",
]


def _bidirectional(base: type, name: str) -> type:
    def __init__(self: Any, config: Any, *args: Any, **kwargs: Any) -> None:
        base.__init__(self, config, *args, **kwargs)
        set_bidirectional_attention(self, True)

    doc = f"``{base.__name__}`` attending in both directions (llm2vec's ``{name}``)."
    return type(name, (base,), {"__init__": __init__, "__doc__": doc, "__module__": __name__})


LlamaBiModel = _bidirectional(LlamaModel, "LlamaBiModel")
MistralBiModel = _bidirectional(MistralModel, "MistralBiModel")
GemmaBiModel = _bidirectional(GemmaModel, "GemmaBiModel")
Qwen2BiModel = _bidirectional(Qwen2Model, "Qwen2BiModel")
LlamaBiForMNTP = _bidirectional(LlamaForCausalLM, "LlamaBiForMNTP")
MistralBiForMNTP = _bidirectional(MistralForCausalLM, "MistralBiForMNTP")
GemmaBiForMNTP = _bidirectional(GemmaForCausalLM, "GemmaBiForMNTP")
Qwen2BiForMNTP = _bidirectional(Qwen2ForCausalLM, "Qwen2BiForMNTP")
