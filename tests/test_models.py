"""Tokenizer, chat template, the atomic cache, saving/loading, and 4-bit + LoRA on CPU.

A small profile (30 pretraining steps, ~15 s) in a cache that lives for this test session
keeps the file fast; the models are not good, only real.
"""

import json
import re
from pathlib import Path

import pytest
import torch

from rlhf_lab import cache, chat, models
from rlhf_lab.config import CACHE_ENV, get_profile
from rlhf_lab.stages import pretrain
from rlhf_lab.world import World
from model_helpers import chat_batch, logits_of, session_cache  # noqa: F401  (fixture)

bnb = pytest.importorskip("bitsandbytes")

PROFILE = get_profile("tiny", pretrain_steps=30)



@pytest.fixture(scope="module")
def base_dir(session_cache):
    return pretrain.get_base_model_dir(PROFILE, progress=False)


@pytest.fixture(scope="module")
def tokenizer(base_dir):
    return pretrain.get_tokenizer(PROFILE)


# ---------------------------------------------------------------------------
# Tokenizer and chat template
# ---------------------------------------------------------------------------


def test_tokenizer_round_trip_is_lossless(tokenizer):
    world = World(0)
    texts = [p.text for p in world.prompts("heldout")]
    texts += [world.ideal_response(p) for p in world.prompts("heldout")]
    texts += pretrain.world_texts(world, 300)  # with special tokens and the counting drills
    texts += [p for p, _ in world.capability_probe()]
    for text in texts:
        ids = tokenizer.encode(text, add_special_tokens=False)
        assert tokenizer.decode(ids) == text


def test_special_tokens_are_single_tokens(tokenizer):
    for token in pretrain.SPECIAL_TOKENS.values():
        assert len(tokenizer.encode(token, add_special_tokens=False)) == 1
    assert tokenizer.pad_token == "<|pad|>" and tokenizer.eos_token == "<|end|>"
    assert tokenizer.padding_side == "left"  # generation pads on the left


def test_chat_template_format(tokenizer):
    messages = [{"role": "user", "content": "What color is the sky?"},
                {"role": "assistant", "content": "The sky is blue."}]
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    assert text == "<|user|>What color is the sky?<|end|><|assistant|>The sky is blue.<|end|>"


def test_generation_prompt_ends_where_the_assistant_speaks(tokenizer):
    text = chat.prompt_text(tokenizer, "How do I wash a car?")
    assert text == "<|user|>How do I wash a car?<|end|><|assistant|>"
    assert text.endswith("<|assistant|>")


def test_chat_template_rejects_other_roles(tokenizer):
    with pytest.raises(Exception, match="system"):
        tokenizer.apply_chat_template([{"role": "system", "content": "Be nice."}], tokenize=False)


def test_assistant_mask_covers_exactly_the_answers_and_their_end_tokens(tokenizer):
    answers = ["The sky is blue.", "Two plus three is five."]
    messages = [{"role": "user", "content": "What color is the sky?"},
                {"role": "assistant", "content": answers[0]},
                {"role": "user", "content": "What is two plus three?"},
                {"role": "assistant", "content": answers[1]}]
    out = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True,
                                        return_assistant_tokens_mask=True)
    ids, mask = out["input_ids"], out["assistant_masks"]
    assert len(ids) == len(mask)
    # The masked tokens, in order, are the answers each followed by <|end|>: nothing else.
    masked = [i for i, m in zip(ids, mask) if m]
    expected = [i for a in answers for i in tokenizer.encode(a + "<|end|>", add_special_tokens=False)]
    assert masked == expected
    # Each masked run starts right after an <|assistant|> token.
    assistant_id = tokenizer.convert_tokens_to_ids("<|assistant|>")
    starts = [k for k in range(len(mask)) if mask[k] and (k == 0 or not mask[k - 1])]
    assert len(starts) == 2 and all(ids[k - 1] == assistant_id for k in starts)


# ---------------------------------------------------------------------------
# The atomic, keyed cache
# ---------------------------------------------------------------------------


def test_failed_build_leaves_nothing_behind(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))

    def broken_build(out):
        (out / "half_written.bin").write_bytes(b"x" * 100)
        raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        cache.build_cached("thing", {"a": 1}, broken_build)
    kind_dir = tmp_path / "thing"
    assert not (kind_dir / cache.settings_key({"a": 1})).exists()
    leftovers = [p for p in kind_dir.iterdir() if p.is_dir()]
    assert leftovers == []  # no temporary directory either


def test_cache_builds_once_and_keys_on_settings(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    calls = []

    def build(out):
        calls.append(out)
        (out / "weights.txt").write_text("w")

    first = cache.build_cached("thing", {"steps": 3, "lr": 0.1}, build)
    again = cache.build_cached("thing", {"lr": 0.1, "steps": 3}, build)  # same settings, other order
    assert first == again and len(calls) == 1
    assert (first / "weights.txt").read_text() == "w"
    assert json.loads((first / "settings.json").read_text()) == {"steps": 3, "lr": 0.1}
    assert first.parent == tmp_path / "thing"
    other = cache.build_cached("thing", {"steps": 4, "lr": 0.1}, build)
    assert other != first and len(calls) == 2
    assert cache.settings_key({"steps": 3}) != cache.settings_key({"steps": 4})
    assert re.fullmatch(r"[0-9a-f]{12}", first.name)


def test_base_model_key_follows_the_pretraining_settings():
    a = pretrain.pretrain_cache_settings(PROFILE)
    assert cache.settings_key(a) == cache.settings_key(pretrain.pretrain_cache_settings(PROFILE))
    assert cache.settings_key(a) != cache.settings_key(pretrain.pretrain_cache_settings(PROFILE.replace(pretrain_steps=31)))
    assert cache.settings_key(a) != cache.settings_key(pretrain.pretrain_cache_settings(PROFILE.replace(seed=1)))


def test_base_model_is_built_once_with_its_report(base_dir, session_cache):
    assert base_dir.parent == session_cache / "base"
    assert pretrain.get_base_model_dir(PROFILE, progress=False) == base_dir
    report = pretrain.pretraining_report(PROFILE)
    assert len(report["loss_history"]) == PROFILE.pretrain_steps
    # 30 steps are enough to get below the loss of uniform guessing (ln(vocab) ~ 6.9).
    assert report["final_loss"] < report["loss_history"][0] < 8


# ---------------------------------------------------------------------------
# Loading, saving
# ---------------------------------------------------------------------------


def test_save_and_load_round_trip_gives_the_same_logits(base_dir, tokenizer, tmp_path):
    batch = chat_batch(tokenizer)
    model = models.load_model(base_dir, trainable=False)
    model.save_pretrained(tmp_path / "copy")
    again = models.load_model(tmp_path / "copy", trainable=False)
    assert torch.equal(logits_of(model, batch), logits_of(again, batch))


def test_lora_adapter_round_trip(base_dir, tokenizer, tmp_path):
    from peft import PeftModel

    batch = chat_batch(tokenizer)
    policy = models.load_model(base_dir, lora=models.LoraSettings(r=4, alpha=8))
    perturb_lora(policy, seed=0)
    before = logits_of(policy, batch)
    policy.save_pretrained(tmp_path / "adapter")
    reloaded = PeftModel.from_pretrained(models.load_model(base_dir, trainable=False), tmp_path / "adapter")
    assert torch.allclose(logits_of(reloaded, batch), before, atol=1e-6)
    with reloaded.disable_adapter():  # and the adapter really mattered
        assert not torch.allclose(logits_of(reloaded, batch), before, atol=1e-3)


def test_trainable_false_freezes_everything(base_dir):
    model = models.load_model(base_dir, trainable=False, lora=models.LoraSettings(r=4, alpha=8))
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())
    trainable = models.load_model(base_dir, lora=models.LoraSettings(r=4, alpha=8))
    names = [n for n, p in trainable.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)


def test_unknown_kind_is_a_value_error(base_dir):
    with pytest.raises(ValueError, match="causal_lm"):
        models.load_model(base_dir, kind="bogus")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the advice given when there is no GPU")
def test_cuda_without_gpu_gives_advice(base_dir):
    with pytest.raises(RuntimeError) as error:
        models.load_model(base_dir, device="cuda")
    assert "no GPU" in str(error.value) and "tiny" in str(error.value) and "doctor" in str(error.value)


# ---------------------------------------------------------------------------
# 4-bit on CPU, and the gradient guard (STACK_NOTES: the AVX512-BF16 trap)
# ---------------------------------------------------------------------------


def cpu_has_avx512_bf16() -> bool:
    try:
        return "avx512_bf16" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def linear4bit_layers(model):
    return [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]


def test_4bit_load_has_guarded_linear4bit_layers_and_generates(base_dir, tokenizer):
    model = models.load_model(base_dir, quantize_4bit=True, trainable=False)
    layers = linear4bit_layers(model)
    shape = PROFILE.tiny_model
    assert len(layers) == 7 * shape.num_layers  # q, k, v, o, gate, up, down in every block
    assert all(layer.support_avx512bf16_for_cpu is False for layer in layers)
    prompts = ["What color is the sky?", "How do I wash a car?", "What is two plus three?"]
    first = models.generate(model, tokenizer, prompts, max_new_tokens=6, do_sample=False)
    second = models.generate(model, tokenizer, prompts, max_new_tokens=6, do_sample=False)
    assert len(first) == 3 and all(isinstance(r, str) for r in first)
    assert first == second  # greedy is deterministic
    assert models.disable_cpu_inference_repacking(model) == len(layers)


def perturb_lora(model, seed: int):
    """LoRA starts with B = 0 (A gets no gradient then): give every LoRA weight a value."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.05)


def lora_gradients_4bit_vs_dequantized(base_dir, tokenizer, guard: bool):
    """LoRA gradients of the 4-bit model after an eval-mode generate(), and of the same LoRA on
    an fp32 copy whose weights are the 4-bit weights dequantized. Returns (4bit, reference)."""
    lora = models.LoraSettings(r=4, alpha=8)
    quantized = models.load_model(base_dir, quantize_4bit=True)
    if not guard:
        for layer in linear4bit_layers(quantized):
            layer.support_avx512bf16_for_cpu = True
    reference = models.load_model(base_dir)
    quantized_modules = dict(quantized.named_modules())
    for name, module in reference.named_modules():
        if isinstance(quantized_modules.get(name), bnb.nn.Linear4bit):
            weight = quantized_modules[name].weight
            module.weight.data = bnb.functional.dequantize_4bit(weight.data, weight.quant_state).float()
    quantized = models.add_lora(quantized, lora, quantized=True)
    reference = models.add_lora(reference, lora)
    perturb_lora(quantized, seed=1)
    perturb_lora(reference, seed=1)

    models.generate(quantized, tokenizer, ["What color is the sky?"], max_new_tokens=4)  # the trigger

    batch = chat_batch(tokenizer)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)

    def gradients(model):
        model.train()
        model.zero_grad()
        model(**batch, labels=labels).loss.backward()
        return {n: p.grad for n, p in model.named_parameters() if "lora_" in n}

    return gradients(quantized), gradients(reference)


def relative_errors(grads, reference):
    assert grads.keys() == reference.keys()
    return {n: float("inf") if grads[n] is None else ((grads[n] - reference[n]).norm() / reference[n].norm()).item()
            for n in reference}


def test_lora_gradients_of_4bit_model_match_the_dequantized_model(base_dir, tokenizer):
    grads, reference = lora_gradients_4bit_vs_dequantized(base_dir, tokenizer, guard=True)
    assert len(reference) == 2 * 7 * PROFILE.tiny_model.num_layers  # A and B of every adapted layer
    assert all(g is not None and g.abs().sum() > 0 for g in reference.values())
    errors = relative_errors(grads, reference)
    assert max(errors.values()) < 1e-3, {n: e for n, e in errors.items() if e >= 1e-3}


def test_without_the_guard_the_lora_gradients_go_wrong(base_dir, tokenizer):
    """The trap the guard exists for. Measured with bitsandbytes 0.50.2: on an AVX512-BF16 CPU
    (relative error ~1.1-1.3) and on an AVX2-only AMD EPYC (relative error ~360) alike, an
    eval-mode forward repacks the 4-bit weights and later LoRA gradients are wrong. If this
    fails, bitsandbytes changed: check whether the guard is still needed."""
    grads, reference = lora_gradients_4bit_vs_dequantized(base_dir, tokenizer, guard=False)
    errors = relative_errors(grads, reference)
    cpu = "AVX512-BF16" if cpu_has_avx512_bf16() else "this (non-AVX512-BF16)"
    assert max(errors.values()) > 0.1, f"expected wrong gradients without the guard on {cpu} CPU"
