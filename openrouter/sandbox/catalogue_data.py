"""The sandbox's model catalogue: real OpenRouter ids with their real per-token USD prices.

Shaped like ``GET https://openrouter.ai/api/v1/models`` (prices are strings). It deliberately
carries a range of popular chat models across providers (enough for a fresh store to sell
several out of the box, see ``OFFERED_MODELS_DEFAULT``) and the awkward cases the store must
handle: a free ``:free`` model ("0"), the ``openrouter/auto`` router ("-1", variable) and a
model with a per-request fee.
"""

from __future__ import annotations

from typing import Any

from openrouter.sandbox.models import SandboxModelOverride

# (id, name, context_length, prompt, completion, request, image, created, modality)
_MODELS: tuple[tuple[str, str, int, str, str, str, str, int, str], ...] = (
    (
        "anthropic/claude-3-sonnet",
        "Anthropic: Claude 3 Sonnet",
        200000,
        "0.000003",
        "0.000015",
        "0",
        "0.0048",
        1709596800,
        "text+image->text",
    ),
    (
        "anthropic/claude-3-haiku",
        "Anthropic: Claude 3 Haiku",
        200000,
        "0.00000025",
        "0.00000125",
        "0",
        "0.0004",
        1710288000,
        "text+image->text",
    ),
    (
        "anthropic/claude-3-opus",
        "Anthropic: Claude 3 Opus",
        200000,
        "0.000015",
        "0.000075",
        "0",
        "0.024",
        1709596800,
        "text+image->text",
    ),
    (
        "anthropic/claude-3.5-sonnet",
        "Anthropic: Claude 3.5 Sonnet",
        200000,
        "0.000003",
        "0.000015",
        "0",
        "0.0048",
        1718841600,
        "text+image->text",
    ),
    (
        "openai/gpt-4o",
        "OpenAI: GPT-4o",
        128000,
        "0.0000025",
        "0.00001",
        "0",
        "0.003613",
        1715558400,
        "text+image->text",
    ),
    (
        "openai/gpt-4o-mini",
        "OpenAI: GPT-4o-mini",
        128000,
        "0.00000015",
        "0.0000006",
        "0",
        "0.007225",
        1721260800,
        "text+image->text",
    ),
    (
        "openai/gpt-3.5-turbo",
        "OpenAI: GPT-3.5 Turbo",
        16385,
        "0.0000005",
        "0.0000015",
        "0",
        "0",
        1685232000,
        "text->text",
    ),
    (
        "google/gemini-flash-1.5",
        "Google: Gemini Flash 1.5",
        1000000,
        "0.000000075",
        "0.0000003",
        "0",
        "0.00004",
        1715644800,
        "text+image->text",
    ),
    ("mistralai/mistral-large", "Mistral Large", 128000, "0.000002", "0.000006", "0", "0", 1708905600, "text->text"),
    (
        "anthropic/claude-3.5-haiku",
        "Anthropic: Claude 3.5 Haiku",
        200000,
        "0.0000008",
        "0.000004",
        "0",
        "0",
        1730678400,
        "text->text",
    ),
    (
        "openai/gpt-4-turbo",
        "OpenAI: GPT-4 Turbo",
        128000,
        "0.00001",
        "0.00003",
        "0",
        "0.01445",
        1712620800,
        "text+image->text",
    ),
    ("openai/o1-mini", "OpenAI: o1-mini", 128000, "0.000003", "0.000012", "0", "0", 1726099200, "text->text"),
    (
        "google/gemini-pro-1.5",
        "Google: Gemini Pro 1.5",
        2000000,
        "0.00000125",
        "0.000005",
        "0",
        "0.0006575",
        1712620800,
        "text+image->text",
    ),
    (
        "google/gemini-2.0-flash-001",
        "Google: Gemini 2.0 Flash",
        1048576,
        "0.0000001",
        "0.0000004",
        "0",
        "0.0000258",
        1738769413,
        "text+image->text",
    ),
    (
        "meta-llama/llama-3.1-405b-instruct",
        "Meta: Llama 3.1 405B Instruct",
        32768,
        "0.0000008",
        "0.0000008",
        "0",
        "0",
        1721692800,
        "text->text",
    ),
    (
        "mistralai/mistral-nemo",
        "Mistral: Mistral Nemo",
        131072,
        "0.000000035",
        "0.00000008",
        "0",
        "0",
        1721347200,
        "text->text",
    ),
    (
        "deepseek/deepseek-chat",
        "DeepSeek: DeepSeek V3",
        163840,
        "0.00000038",
        "0.00000089",
        "0",
        "0",
        1735241320,
        "text->text",
    ),
    (
        "qwen/qwen-2.5-72b-instruct",
        "Qwen2.5 72B Instruct",
        32768,
        "0.00000012",
        "0.00000039",
        "0",
        "0",
        1726704000,
        "text->text",
    ),
    ("x-ai/grok-2-1212", "xAI: Grok 2 1212", 131072, "0.000002", "0.00001", "0", "0", 1734232814, "text->text"),
    (
        "cohere/command-r-plus-08-2024",
        "Cohere: Command R+ (08-2024)",
        128000,
        "0.0000025",
        "0.00001",
        "0",
        "0",
        1724976000,
        "text->text",
    ),
    (
        "meta-llama/llama-3.1-70b-instruct",
        "Meta: Llama 3.1 70B Instruct",
        131072,
        "0.00000012",
        "0.0000003",
        "0",
        "0",
        1721692800,
        "text->text",
    ),
    (
        "meta-llama/llama-3.1-8b-instruct:free",
        "Meta: Llama 3.1 8B Instruct (free)",
        131072,
        "0",
        "0",
        "0",
        "0",
        1721692800,
        "text->text",
    ),
    (
        "perplexity/llama-3.1-sonar-large-128k-online",
        "Perplexity: Llama 3.1 Sonar 70B Online",
        127072,
        "0.000001",
        "0.000001",
        "0.005",
        "0",
        1722470400,
        "text->text",
    ),
    ("openrouter/auto", "Auto Router", 2000000, "-1", "-1", "-1", "-1", 1699401600, "text->text"),
)


def _entry(model_id, name, context, prompt, completion, request, image, created, modality) -> dict[str, Any]:
    return {
        "id": model_id,
        "canonical_slug": model_id,
        "name": name,
        "created": created,
        "description": f"{name} (served by the Token Store sandbox).",
        "context_length": context,
        "architecture": {
            "modality": modality,
            "input_modalities": ["text", "image"] if "image" in modality else ["text"],
            "output_modalities": ["text"],
            "tokenizer": model_id.split("/")[0].capitalize(),
            "instruct_type": None,
        },
        "pricing": {
            "prompt": prompt,
            "completion": completion,
            "request": request,
            "image": image,
            "web_search": "0",
            "internal_reasoning": "0",
        },
        "top_provider": {"context_length": context, "max_completion_tokens": 4096, "is_moderated": True},
        "per_request_limits": None,
        "supported_parameters": ["max_tokens", "temperature", "top_p", "stop"],
        # Fields the official SDK requires on every model (present, possibly null).
        "default_parameters": {"temperature": None, "top_p": None, "frequency_penalty": None},
        "supported_voices": None,
        "links": {"details": f"/api/v1/models/{model_id}/endpoints"},
    }


def sandbox_catalogue() -> list[dict[str, Any]]:
    """The catalogue as ``GET /models`` serves it now, with any demo overrides applied."""
    overrides = {o.model_id: o for o in SandboxModelOverride.objects.all()}
    entries = []
    for row in _MODELS:
        entry = _entry(*row)
        override = overrides.pop(entry["id"], None)
        if override is not None:
            if override.hidden:
                continue
            _apply(entry, override)
        entries.append(entry)
    for override in overrides.values():  # overrides for ids the catalogue lacks add new models
        if not override.hidden:
            entry = _entry(
                override.model_id,
                override.name or override.model_id,
                128000,
                override.prompt or "0",
                override.completion or "0",
                "0",
                "0",
                1735689600,
                "text->text",
            )
            entries.append(entry)
    return entries


def _apply(entry: dict[str, Any], override: SandboxModelOverride) -> None:
    if override.name:
        entry["name"] = override.name
    if override.prompt:
        entry["pricing"]["prompt"] = override.prompt
    if override.completion:
        entry["pricing"]["completion"] = override.completion
