"""Training-config dataclasses shared by the run scripts.

A config is one JSON object whose keys are the fields of these dataclasses (and of
``transformers.TrainingArguments``); a key that no dataclass of the stage defines is an error.
Stage-specific groups keep keys from being accepted where they would be ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments


@dataclass
class ModelArguments:
    """Which model to start from and how it turns text into an embedding."""

    model_name_or_path: str = field(metadata={"help": "Hub id or local folder of the base causal LM."})
    peft_model_name_or_path: str | None = field(
        default=None, metadata={"help": "Adapter to load (and merge) on top of the base model before training."}
    )
    bidirectional: bool = field(default=False, metadata={"help": "Bidirectional attention (llm2vec); off in the paper."})
    pooling_mode: str = field(
        default="eos_token", metadata={"help": "mean, weighted_mean, eos_token, last_token or bos_token."}
    )
    max_seq_length: int = field(default=512, metadata={"help": "Most tokens per text, template included."})
    prompt_template: str = field(
        default="auto", metadata={"help": "llama3, qwen2, chatml, mistral, generic or auto (from the model)."}
    )
    torch_dtype: str | None = field(
        default=None, metadata={"help": "Weights dtype: bfloat16, float16, float32 or auto (checkpoint's)."}
    )
    attn_implementation: str = field(
        default="sdpa", metadata={"help": "sdpa, eager or flash_attention_2 (falls back to sdpa if not installed)."}
    )


@dataclass
class DataArguments:
    """Where the (query, positive[, negative]) pairs come from."""

    dataset_name: str = field(default="E5", metadata={"help": "E5 (echo-embeddings directory) or jsonl."})
    dataset_file_path: str = field(
        default="cache/echo-data", metadata={"help": "The E5 directory, or a JSONL file or directory."}
    )
    dataset_files: list[str] | None = field(
        default=None, metadata={"help": "Only these files (names without .jsonl), e.g. [\"nq\", \"squad\"]."}
    )
    default_instruction: str | None = field(
        default=None, metadata={"help": "jsonl only: instruction for lines that have none."}
    )


@dataclass
class StageIArguments:
    """Bidirectional reconstruction (EBQ2D + EBD2Q)."""

    alpha: float = field(default=0.2, metadata={"help": "loss = alpha * Q2D + (1 - alpha) * D2Q (paper 0.2)."})
    release_compat: bool = field(
        default=False, metadata={"help": "Reproduce the release's computation exactly (see docs)."}
    )
    ce_chunk_size: int | None = field(
        default=4096, metadata={"help": "Target positions per cross-entropy chunk; null for one piece."}
    )
    ce_implementation: str = field(
        default="auto",
        metadata={
            "help": "Cross-entropy at target positions: auto (fused for a plain lm_head, chunked for a sharded "
            "one), fused, chunked, liger (liger-kernel, CUDA), cut (cut-cross-entropy, CUDA). Same loss."
        },
    )
    packing: bool = field(
        default=True,
        metadata={"help": "Padding-free packed encoder and decoder passes (false: padded rows). Same loss."},
    )
    packed_attention: str = field(
        default="varlen",
        metadata={
            "help": "Attention of packed rows: varlen (per sample; flash-attention varlen when loaded) or mask "
            "(transformers' block-diagonal mask over the whole row)."
        },
    )

    def __post_init__(self) -> None:
        from llm2vec.loss.reconstruction_loss import CE_IMPLEMENTATIONS

        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1], got {self.alpha}")
        if self.ce_chunk_size is not None and self.ce_chunk_size < 1:
            raise ValueError(f"ce_chunk_size must be a positive number of positions or null, got {self.ce_chunk_size}")
        if self.ce_implementation not in CE_IMPLEMENTATIONS:
            raise ValueError(f"ce_implementation must be one of {list(CE_IMPLEMENTATIONS)}, got {self.ce_implementation!r}")
        if self.packed_attention not in ("varlen", "mask"):
            raise ValueError(f"packed_attention must be 'varlen' or 'mask', got {self.packed_attention!r}")


@dataclass
class EmbeddingTrainingArguments(TrainingArguments):
    """``TrainingArguments`` plus the step limit of the paper's recipes.

    ``resume_from_checkpoint`` (a ``TrainingArguments`` key) takes a checkpoint folder or ``"last"``,
    the newest ``checkpoint-N`` of ``output_dir`` that was written completely.
    """

    ddp_find_unused_parameters: bool | None = field(
        default=False,
        metadata={"help": "Every parameter takes part in both stages' losses, so DDP need not search for unused ones."},
    )
    stop_after_n_steps: int | None = field(
        default=None,
        metadata={"help": "Stop (and save) after this many optimizer steps; the schedule still spans all epochs."},
    )


@dataclass
class StageIIArguments:
    """Contrastive fine-tuning (InfoNCE with in-batch and hard negatives) with LoRA."""

    loss_scale: float = field(
        default=50.0,
        metadata={"help": "1 / temperature of the cosine scores: 50 in the release and llm2vec, 20 in the paper's text."},
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank (paper 16)."})
    lora_alpha: int | None = field(default=None, metadata={"help": "LoRA alpha; null means 2 * lora_r."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA input (paper 0.05)."})
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        metadata={"help": "Linear layers that get a LoRA adapter."},
    )
    full_parameter: bool = field(
        default=False,
        metadata={"help": "Train every weight without LoRA (the release's accidental behaviour; off in the paper)."},
    )
    gradient_cache_mini_batch_size: int | None = field(
        default=None,
        metadata={
            "help": "Gradient cache: encode this many rows at a time while the loss spans the whole batch "
            "(single process; lets one GPU train the paper's batch of 512 exactly)."
        },
    )
    save_merged_model: bool = field(
        default=False,
        metadata={"help": "Also write the base with the adapter merged in to <output_dir>/merged at the end."},
    )
