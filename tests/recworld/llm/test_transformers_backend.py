"""Backend 'transformers' on a tiny randomly initialised GPT-2 built offline in a tmp dir."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from recworld.errors import LLMError
from recworld.llm import LLMConfig, LLMRequest, LLMRuntime

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


class Choice(BaseModel):
    watch: bool


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    out = tmp_path_factory.mktemp("tiny-gpt2")
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = ["the user watched a movie about space and liked it", '{"watch": true}', '{"watch": false}'] * 20
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>")
    fast.save_pretrained(out)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(fast), n_positions=128, n_embd=32, n_layer=2, n_head=2, bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id)
    GPT2LMHeadModel(config).save_pretrained(out)
    return out


def test_generates_text_through_the_runtime(tiny_model_dir: Path):
    records = []
    config = LLMConfig(backend="transformers", model_dir=str(tiny_model_dir), model="tiny", cache_path=None, max_tokens=6, temperature=0.8, seed=3)
    with LLMRuntime(config, on_call=[records.append]) as rt:
        req = LLMRequest([{"role": "user", "content": "the user watched"}], purpose="post")
        a, b = rt.complete_many([req, req])
        assert not a.fell_back and isinstance(a.text, str)
        assert a.text == b.text  # seeded per call: reproducible
        assert a.tokens_in >= 3 and 0 < a.tokens_out <= 6
        assert [r.purpose for r in records] == ["post", "post"]


def test_structured_output_falls_back_when_the_model_cannot_comply(tiny_model_dir: Path):
    config = LLMConfig(backend="transformers", model_dir=str(tiny_model_dir), cache_path=None, max_tokens=4, temperature=0.0)
    with LLMRuntime(config) as rt:
        res = rt.complete(LLMRequest([{"role": "user", "content": "decide"}], json_schema=Choice))
        assert res.fell_back and res.parsed is None and res.retries == 1
        assert res.error is not None and res.error.startswith("invalid output")


def test_missing_model_dir_is_an_llm_error(tmp_path: Path):
    rt = LLMRuntime(LLMConfig(backend="transformers", model_dir=str(tmp_path / "nope"), cache_path=None))
    with pytest.raises(LLMError, match="not a directory"):
        rt.start()
    rt.close()
