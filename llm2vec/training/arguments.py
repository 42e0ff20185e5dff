"""Training-config dataclasses shared by the run scripts.

A config is one JSON object whose keys are the fields of the dataclasses a run script parses
(these, ``transformers.TrainingArguments`` and the models' own settings classes
``StageILossComputation`` and ``LoraSettings``); a key that none of them defines is an error.
Defaults and rules of model settings live with the model (``LLM2VecConfig``,
``HardNegativeNLLLoss``): the fields here take them from there, so each has one owner.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments

from llm2vec.llm2vec_contrastive import LoraSettings
from llm2vec.llm2vec_mntp import MASK_TOKEN_TYPES
from llm2vec.llm2vec_q2d_d2q import StageILossComputation
from llm2vec.loss.hard_negative_nll_loss import DEFAULT_SCALE, scale_problem
from llm2vec.model_config import LLM2VecConfig

_ENCODER = LLM2VecConfig()


def _check(key: str, setting: str, value: object) -> None:
    """Raise the rule of ``LLM2VecConfig.<setting>`` under the config key ``key``."""
    problem = LLM2VecConfig.problem_with(setting, value)
    if problem is not None:
        raise ValueError(f"{key} {problem}")


@dataclass
class ModelArguments:
    """Which model to start from and how it turns text into an embedding."""

    model_name_or_path: str = field(metadata={"help": "Hub id or local folder of the base causal LM."})
    peft_model_name_or_path: str | None = field(
        default=None, metadata={"help": "Adapter to load (and merge) on top of the base model before training."}
    )
    bidirectional: bool = field(
        default=_ENCODER.enable_bidirectional, metadata={"help": "Bidirectional attention (llm2vec); off in the paper."}
    )
    pooling_mode: str = field(
        default=_ENCODER.pooling_mode, metadata={"help": "mean, weighted_mean, eos_token, last_token or bos_token."}
    )
    max_seq_length: int = field(
        default=_ENCODER.max_length, metadata={"help": "Most tokens per text, template included."}
    )
    prompt_template: str = field(
        default=_ENCODER.prompt_template,
        metadata={"help": "llama3, qwen2, chatml, mistral, generic or auto (from the model)."},
    )
    tokenization: str | None = field(
        default=None,
        metadata={"help": "anchor (this project's) or llm2vec (McGill-NLP llm2vec's); unset: from the checkpoint."},
    )
    torch_dtype: str | None = field(
        default=None, metadata={"help": "Weights dtype: bfloat16, float16, float32 or auto (checkpoint's)."}
    )
    attn_implementation: str = field(
        default="sdpa", metadata={"help": "sdpa, eager or flash_attention_2 (falls back to sdpa if not installed)."}
    )

    def __post_init__(self) -> None:
        _check("bidirectional", "enable_bidirectional", self.bidirectional)
        _check("pooling_mode", "pooling_mode", self.pooling_mode)
        _check("max_seq_length", "max_length", self.max_seq_length)
        _check("prompt_template", "prompt_template", self.prompt_template)
        if self.tokenization is not None:
            _check("tokenization", "tokenization", self.tokenization)


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
    """Bidirectional reconstruction (EBQ2D + EBD2Q); how it is computed: ``StageILossComputation``."""

    alpha: float = field(
        default=_ENCODER.alpha, metadata={"help": "loss = alpha * Q2D + (1 - alpha) * D2Q (paper 0.2)."}
    )
    release_compat: bool = field(
        default=_ENCODER.release_compat, metadata={"help": "Reproduce the release's computation exactly (see docs)."}
    )

    def __post_init__(self) -> None:
        _check("alpha", "alpha", self.alpha)
        _check("release_compat", "release_compat", self.release_compat)


@dataclass
class StageIIArguments:
    """Contrastive fine-tuning (InfoNCE with in-batch and hard negatives); the adapter: ``LoraSettings``."""

    loss_scale: float = field(
        default=DEFAULT_SCALE,
        metadata={"help": "1 / temperature of the cosine scores: 50 in the release and llm2vec, 20 in the paper's text."},
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
    simcse_dropout: float | None = field(
        default=None,
        metadata={
            "help": "Attention dropout while training (llm2vec's SimCSE: the two copies of a sentence differ by "
            "it); null keeps the model's own (0 for the paper's models)."
        },
    )

    def __post_init__(self) -> None:
        dropout = self.simcse_dropout
        if dropout is not None and (isinstance(dropout, bool) or not isinstance(dropout, (int, float))
                                    or not 0 <= dropout < 1):
            raise ValueError(f"simcse_dropout must be a number in [0, 1) or null, got {dropout!r}")
        problem = scale_problem(self.loss_scale)
        if problem is not None:
            raise ValueError(f"loss_scale {problem}")
        size = self.gradient_cache_mini_batch_size
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise ValueError(f"gradient_cache_mini_batch_size must be a positive integer or null, got {size!r}")


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
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Start over in an output_dir that holds a run: delete its checkpoints and model first. Without "
            "it such a folder is refused unless the run resumes (resume_from_checkpoint)."
        },
    )



#: the dataclasses of a Stage I config, in the order ``parse_config`` returns their instances
STAGE_I_CONFIG_TYPES = (ModelArguments, DataArguments, StageIArguments, StageILossComputation, EmbeddingTrainingArguments)
#: the dataclasses of a Stage II config, likewise
STAGE_II_CONFIG_TYPES = (ModelArguments, DataArguments, StageIIArguments, LoraSettings, EmbeddingTrainingArguments)


@dataclass
class MNTPArguments:
    """Masked next-token prediction (llm2vec's first step): what is masked and how."""

    mask_token_type: str = field(
        default="blank", metadata={"help": "The token put in place of a masked one: blank ('_'), eos or mask (new)."}
    )
    mlm_probability: float = field(default=0.2, metadata={"help": "Share of tokens masked (llm2vec's configs: 0.2)."})
    data_collator_type: str = field(
        default="default",
        metadata={"help": "default: masked tokens become the mask 80%, a random token 10%, themselves 10%; "
                          "all_mask: always the mask."},
    )
    dataset_config_name: str | None = field(
        default=None, metadata={"help": "The hub dataset's configuration (wikitext: wikitext-103-raw-v1)."}
    )

    def __post_init__(self) -> None:
        if self.mask_token_type not in MASK_TOKEN_TYPES:
            raise ValueError(f"mask_token_type must be one of {list(MASK_TOKEN_TYPES)}, got {self.mask_token_type!r}")
        if isinstance(self.mlm_probability, bool) or not 0 < self.mlm_probability < 1:
            raise ValueError(f"mlm_probability must be a number in (0, 1), got {self.mlm_probability!r}")
        if self.data_collator_type not in ("default", "all_mask"):
            raise ValueError(f"data_collator_type must be 'default' or 'all_mask', got {self.data_collator_type!r}")


MNTP_CONFIG_TYPES = (ModelArguments, DataArguments, MNTPArguments, LoraSettings, EmbeddingTrainingArguments)


@dataclass
class WordTaskArguments:
    """llm2vec's word-level probing tasks: which tags, from which data, read from which tokens."""

    dataset_name: str = field(
        default="conll2003",
        metadata={"help": "conll2003 (its label sets; the hub dataset unless train_file is set), another hub "
                          "dataset laid out like it, or any name for local CoNLL files (labels from training)."},
    )
    train_file: str | None = field(default=None, metadata={"help": "CoNLL or .conllu file of the training split."})
    validation_file: str | None = field(default=None, metadata={"help": "CoNLL or .conllu file of the validation split."})
    test_file: str | None = field(default=None, metadata={"help": "CoNLL or .conllu file of the test split (optional)."})
    task: str = field(default="pos_tags", metadata={"help": "pos_tags, chunk_tags or ner_tags (CoNLL-2003), upos/xpos (.conllu)."})
    tag_column: int | None = field(default=None, metadata={"help": "Column of the tags in the files (0 = the word); unset: the task's."})
    retroactive_labels: str = field(
        default="next_token",
        metadata={"help": "next_token: a word's tag is predicted at the token before it (llm2vec's default); "
                          "same_token: at its first token."},
    )
    merge_subwords: bool = field(default=True, metadata={"help": "Average the states of a word's tokens (llm2vec's default)."})
    classifier_dropout: float = field(default=0.1, metadata={"help": "Dropout on the states before the classifier."})
    feature_batch_size: int = field(default=32, metadata={"help": "Sentences per forward pass when computing the states."})
    peft_addr: str | None = field(default=None, metadata={"help": "llm2vec's name for peft_model_name_or_path."})
    model_class: str = field(
        default="custom", metadata={"help": "llm2vec's key: custom (a frozen LLM2Vec model) is the one supported."}
    )

    def __post_init__(self) -> None:
        from llm2vec.word_task.alignment import RETROACTIVE_LABELS

        if self.retroactive_labels not in RETROACTIVE_LABELS:
            raise ValueError(
                f"retroactive_labels must be one of {list(RETROACTIVE_LABELS)}, got {self.retroactive_labels!r}"
            )
        if self.model_class != "custom":
            raise ValueError(
                f"model_class {self.model_class!r} is not supported: only 'custom' (llm2vec's frozen model with a "
                "linear classifier); 'auto' fine-tunes transformers' token classifier, which is not this recipe"
            )
        if isinstance(self.classifier_dropout, bool) or not 0 <= self.classifier_dropout < 1:
            raise ValueError(f"classifier_dropout must be in [0, 1), got {self.classifier_dropout!r}")
        if self.feature_batch_size < 1:
            raise ValueError(f"feature_batch_size must be positive, got {self.feature_batch_size!r}")
        if self.tag_column is not None and self.tag_column < 1:
            raise ValueError(f"tag_column must be 1 or more (0 is the word), got {self.tag_column!r}")


WORD_TASK_CONFIG_TYPES = (ModelArguments, WordTaskArguments, EmbeddingTrainingArguments)
