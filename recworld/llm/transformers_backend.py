"""Backend ``transformers``: a local Hugging Face causal LM behind the runtime's interface.

Generation runs in one worker thread (torch releases the GIL while it
computes), so the runtime's event loop stays responsive and its retries,
cache and accounting apply unchanged. Nothing is downloaded:
``local_files_only=True``.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from recworld.errors import LLMError
from recworld.llm.structured import render_prompt
from recworld.llm.transport import Attempt, Reply, TransportError

__all__ = ["TransformersTransport"]


class TransformersTransport:
    """Generates with ``transformers`` from a local model directory.

    Structured output is not constrained here: the runtime's validation and
    repair attempt apply, and a model that cannot produce the JSON falls back.

    Args:
        model_dir: A directory written by ``save_pretrained`` (model and tokenizer).
        seed: Sampling seed; each call samples from a fresh generator state so
            answers are reproducible and independent of call order.
        device: Torch device.

    Raises:
        LLMError: transformers/torch are missing or the directory cannot be loaded.
    """

    def __init__(self, model_dir: str | Path, *, seed: int = 0, device: str = "cpu") -> None:
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as err:
            raise LLMError("backend 'transformers' needs torch and transformers: pip install transformers torch") from err
        path = Path(model_dir)
        if not path.is_dir():
            raise LLMError(f"model_dir {str(path)!r} is not a directory; expected a save_pretrained() folder")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            self.model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True).to(device)
        except Exception as err:
            raise LLMError(f"could not load a causal LM from {str(path)!r}: {err}") from err
        self.model.eval()
        self._torch = torch
        self.seed = seed
        self.device = device
        self.model_dir = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recworld-hf")

    def __repr__(self) -> str:
        return f"TransformersTransport(model_dir={str(self.model_dir)!r})"

    async def send(self, attempt: Attempt, timeout_s: float) -> Reply:
        """Generate in the worker thread; a timeout is not retried (the model is local)."""
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(self._executor, self._generate, attempt)
        try:
            return await asyncio.wait_for(fut, timeout_s)
        except TimeoutError:
            raise TransportError("timeout", False) from None
        except TransportError:
            raise
        except Exception as err:
            raise TransportError(f"backend error: {type(err).__name__}", False) from err

    def _prompt(self, attempt: Attempt) -> str:
        if attempt.mode == "chat" and getattr(self.tokenizer, "chat_template", None):
            return str(self.tokenizer.apply_chat_template(attempt.messages, tokenize=False, add_generation_prompt=True))
        return render_prompt(attempt.messages)

    def _generate(self, attempt: Attempt) -> Reply:
        torch = self._torch
        enc = self.tokenizer(self._prompt(attempt), return_tensors="pt").to(self.device)
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit and enc["input_ids"].shape[1] + attempt.max_tokens > limit:
            # Keep the end of an over-long prompt: its question is there.
            keep = max(1, limit - attempt.max_tokens)
            enc = {k: v[:, -keep:] for k, v in enc.items()}
        n_in = int(enc["input_ids"].shape[1])
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        kwargs: dict[str, Any] = {"max_new_tokens": attempt.max_tokens, "pad_token_id": pad}
        if attempt.temperature > 0:
            kwargs.update(do_sample=True, temperature=attempt.temperature)
        else:
            kwargs.update(do_sample=False)
        # fork_rng keeps the process-wide torch RNG untouched by our seeding.
        with torch.random.fork_rng(devices=[]), torch.inference_mode():
            torch.manual_seed(attempt.seed)
            out = self.model.generate(**enc, **kwargs)
        new_tokens = out[0, n_in:]
        text = self.tokenizer.decode(new_tokens, skip_special_tokens=True)
        for stop in attempt.stop or ():
            cut = text.find(stop)
            if cut != -1:
                text = text[:cut]
        return Reply(text, n_in, int(new_tokens.shape[0]))

    async def aclose(self) -> None:
        """Stop the worker thread."""
        self._executor.shutdown(wait=False, cancel_futures=True)
