"""The sidecar prints what it says itself (issue 21): peft's use of a deprecated transformers
property is silenced at the sidecar's entry, that one warning only."""

from __future__ import annotations

import warnings

import pytest

pytest.importorskip("peft")


def tiny_lora():
    from peft import LoraConfig, get_peft_model
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=8, vocab_size=32, n_positions=16))
    return get_peft_model(model, LoraConfig(r=2, target_modules=["c_attn"]))


def test_peft_triggers_the_deprecation_the_entry_filters():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tiny_lora()
    assert any("is_gradient_checkpointing" in str(w.message) for w in caught), [str(w.message) for w in caught]


def test_the_entry_filters_that_warning_and_no_other():
    from transformers.utils import logging as hf_logging

    from sidecar.cli import quiet_libraries

    bars = hf_logging.is_progress_bar_enabled()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            quiet_libraries()
            tiny_lora()
            warnings.warn("some other deprecation", FutureWarning, stacklevel=1)
    finally:
        if bars:
            hf_logging.enable_progress_bar()  # quiet_libraries turned them off off a terminal
    messages = [str(w.message) for w in caught]
    assert not any("is_gradient_checkpointing" in m for m in messages), messages
    assert "some other deprecation" in messages
