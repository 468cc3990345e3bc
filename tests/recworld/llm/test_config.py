"""LLMConfig: validation of server pools (base_urls) and the one-line errors a scenario gets."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from recworld.agents.brains.llm import build_brain_from_config
from recworld.errors import ConfigError
from recworld.llm import LLMConfig

URLS = ["http://10.0.0.1:8000/v1", "http://10.0.0.2:8000/v1"]


def test_endpoints_are_the_pool_or_the_one_url():
    assert LLMConfig(backend="openai", base_urls=URLS).endpoints == tuple(URLS)
    assert LLMConfig(backend="openai", base_url=URLS[0]).endpoints == (URLS[0],)
    assert LLMConfig(backend="openai").endpoints == (None,)  # the openai client's default server
    c = LLMConfig(backend="openai", base_urls=URLS)
    assert LLMConfig.model_validate_json(c.model_dump_json()) == c  # survives the run's stored config


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"base_url": URLS[0], "base_urls": URLS}, r"give base_url \(one server\) or base_urls \(a pool of servers\), not both"),
        ({"base_urls": []}, "base_urls is empty"),
        ({"base_urls": ["10.0.0.1:8000/v1"]}, r"base_urls\[0\]: expected an http\(s\) URL"),
        ({"base_urls": [URLS[0], URLS[0] + "/"]}, "lists 'http://10.0.0.1:8000/v1/' twice"),
    ],
)
def test_bad_pools_are_rejected(fields, message):
    with pytest.raises(ValidationError, match=message):
        LLMConfig(backend="openai", **fields)


def test_a_pool_needs_the_openai_backend():
    with pytest.raises(ValidationError, match="base_urls needs backend 'openai' \\(got 'embedded'\\); add backend: openai"):
        LLMConfig(base_urls=URLS)


def test_scenario_llm_section_errors_are_one_line_config_errors():
    with pytest.raises(ConfigError) as e:
        build_brain_from_config("llm", {}, {"backend": "openai", "base_url": URLS[0], "base_urls": URLS})
    assert str(e.value).startswith("field 'llm': give base_url (one server) or base_urls")
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match=r"^field 'llm.base_urls': base_urls\[1\]: expected an http\(s\) URL"):
        build_brain_from_config("llm", {}, {"backend": "openai", "base_urls": [URLS[0], "nope"]})
