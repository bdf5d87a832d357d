"""A tiny causal language model built inside the test: random weights, nothing downloaded.

`save_tiny_llm(path)` writes a Llama-shaped model of a few thousand parameters and
a word-level tokenizer (built with the `tokenizers` library from `WORDS`, with a
chat template) to `path`, in the layout `from_pretrained` reads: a "local path"
base model for the LoRA trainer, and for any test that wants TRL to read data
with a real tokenizer. Words outside `WORDS` become `<unk>`.

Needs the `llm-train` extra (torch, transformers, tokenizers).
"""

from __future__ import annotations

from pathlib import Path

SPECIAL = ["<pad>", "<unk>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>"]
WORDS = ("a an the is are was be to of and or in on at for with my your our it this that what where when how why "
         "who yes no not please thanks thank you hello hi help order orders ticket refund return ship shipped "
         "shipping package delivery arrive arrives arrived today tomorrow week day days late sorry can could will "
         "would do does did i we they he she me us them here there now soon one two three four five status "
         "account password reset email address change cancel cancelled support agent answer question good bad "
         "great fine ok okay sure right wrong time back up down new old check checked track tracking number").split()
# One turn: `<|role|> text </s>`; the generation prompt opens the assistant's turn.
CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} </s> {% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")


def tiny_tokenizer(words: list[str] | tuple[str, ...] = WORDS):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate([*SPECIAL, *dict.fromkeys(w.lower() for w in words), ".", ",", "?",
                                                  "!", "'"])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    core.add_special_tokens(SPECIAL)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                        unk_token="<unk>")
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def tiny_model(vocab_size: int, *, seed: int = 0, hidden: int = 16, layers: int = 1):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=2, num_key_value_heads=2,
                         max_position_embeddings=512, bos_token_id=SPECIAL.index("<s>"),
                         eos_token_id=SPECIAL.index("</s>"), pad_token_id=SPECIAL.index("<pad>"),
                         tie_word_embeddings=True)
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def save_tiny_llm(path: Path, *, seed: int = 0) -> Path:
    """Write the tiny model and its tokenizer to `path` (safetensors); returns `path`."""
    path = Path(path)
    tokenizer = tiny_tokenizer()
    model = tiny_model(len(tokenizer), seed=seed)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
