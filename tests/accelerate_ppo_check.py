"""A few PPO steps on a tiny random model, on one process or under ``accelerate launch``.

Run by tests/test_accelerate.py (not collected by pytest itself)::

    python tests/accelerate_ppo_check.py OUT                       # one process
    accelerate launch --config_file accelerate/ddp.yaml --num_processes 2 tests/accelerate_ppo_check.py OUT

Two phases, with a global batch of 8 responses (4 prompts x 2 samples) split over the processes:

A. **Same experience, same update** (plain SGD). Process 0 samples the rollout of the whole global batch
   and every process takes its slice, so one and two processes see the very same samples;
   then only the data-parallel update differs. One minibatch per epoch, no advantage
   whitening and no running score normalisation (both are per process), and no response ends
   early (the EOS token is outside the model's output vocabulary), so every process holds the
   same number of tokens: two processes must then end on the weights of one process.
B. **Each process samples its own prompts** (the real path): the processes sample different
   prompts and still hold equal weights after every step, and log the same (averaged) stats.

Writes ``OUT/rank{i}.pt`` per process.
"""

import dataclasses
import sys
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import broadcast_object_list, gather_object

from rlhf_lab.ppo import PPOSettings, PPOTrainer, Rollout

# The tiny word-level world of the PPO unit tests (this script runs from tests/, so it can import them).
from test_ppo import CHAT_TEMPLATE, PROMPTS, WORDS  # noqa: E402

GLOBAL_BATCH = 8


def make_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    # <|eos|> is the LAST id and the model's vocabulary stops before it: it is never sampled,
    # so every response has the full length (and every process the same number of tokens).
    specials = ["<|pad|>", "<|end|>", "<|user|>", "<|assistant|>"]
    vocab = {token: i for i, token in enumerate(specials + WORDS + ["<|eos|>"])}
    word_level = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<|pad|>"))
    word_level.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    word_level.decoder = decoders.WordPiece()
    tok = PreTrainedTokenizerFast(tokenizer_object=word_level, pad_token="<|pad|>", eos_token="<|eos|>",
                                  additional_special_tokens=["<|user|>", "<|assistant|>", "<|end|>"],
                                  padding_side="left")
    tok.chat_template = CHAT_TEMPLATE
    return tok


def make_policy(tokenizer):
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer) - 1, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
                         initializer_range=0.1, pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
                         eos_token_id=None)
    base = LlamaForCausalLM(config).eval()
    return get_peft_model(base, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear",
                                           task_type="CAUSAL_LM"))


def reward_fn(prompts, responses):
    """Say 'yes', not 'no'."""
    return torch.tensor([r.split().count("yes") - r.split().count("no") for r in responses], dtype=torch.float32)


class SharedRolloutTrainer(PPOTrainer):
    """Process 0 samples the whole global batch; each process keeps its own slice of it."""

    def rollout(self, prompts):
        everyone = gather_object(list(prompts))  # every process's prompts, in process order
        full = [PPOTrainer.rollout(self, everyone) if self.process_index == 0 else None]
        broadcast_object_list(full)
        full = full[0]
        assert bool(full.response_mask.all()), "a response ended early: the processes' token counts differ"
        mine = slice(self.process_index * len(prompts), (self.process_index + 1) * len(prompts))
        return Rollout(**{name: value[mine] for name, value in vars(full).items()})


class RecordingTrainer(PPOTrainer):
    """Remembers the prompts this process sampled."""

    def step(self, prompts):
        self.__dict__.setdefault("seen", []).append(list(prompts))
        return super().step(prompts)


def trainable_state(trainer):
    state = {n: p.detach().clone() for n, p in trainer.policy.named_parameters() if p.requires_grad}
    state.update({f"value_head.{n}": p.detach().clone() for n, p in trainer.value_head.named_parameters()})
    return state


def main(out: Path) -> None:
    accelerator = Accelerator(cpu=True)
    n, rank = accelerator.num_processes, accelerator.process_index
    tokenizer = make_tokenizer()
    config = PPOSettings(steps=3, batch_size=GLOBAL_BATCH // n, samples_per_prompt=2, mini_batch_size=GLOBAL_BATCH // n,
                       ppo_epochs=2, max_new_tokens=6, learning_rate=1e-2, whiten_advantages=False,
                       normalize_scores=False, seed=0)
    # A. the same experience on one or two processes
    shared = SharedRolloutTrainer(make_policy(tokenizer), tokenizer, reward_fn, config, accelerator=accelerator)
    # Plain SGD here: its step is proportional to the averaged gradient (Adam's is nearly
    # scale-free: it would hide a sum-instead-of-mean, and it magnifies float noise in
    # near-zero gradients).
    shared.optimizer = torch.optim.SGD(shared.trainable_parameters, lr=0.1)
    stats_a = shared.train(PROMPTS, progress=False)
    # B. each process samples its own prompts
    own = RecordingTrainer(make_policy(tokenizer), tokenizer, reward_fn, dataclasses.replace(config, steps=2),
                           accelerator=accelerator)
    own.train(PROMPTS, progress=False)
    mine = torch.cat([t.flatten() for t in trainable_state(own).values()])
    weights_equal = all(torch.equal(mine, other) for other in gather_object([mine]))
    torch.save({"num_processes": n, "stats_a": stats_a, "weights_a": trainable_state(shared),
                "stats_b": own.log, "prompts_b": own.seen, "weights_equal_b": weights_equal},
               out / f"rank{rank}.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
