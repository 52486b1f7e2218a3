"""Tiny, randomly initialised Chronos checkpoints for offline tests.

The models are built with chronos-forecasting's own config/model classes and
written with ``save_pretrained`` so that the directories load through the
normal loaders, with no network access::

    chronos.Chronos2Pipeline.from_pretrained(dir)
    chronos.ChronosBoltPipeline.from_pretrained(dir)
    chronos.BaseChronosPipeline.from_pretrained(dir, device_map="cpu")

The weights are random (seeded), so forecasts are finite and deterministic but
carry no meaning. Left fully random, the quantile head produces crossing
quantiles about half the time; by default (``monotone_quantiles=True``) the
output head's per-quantile rows are tied to the median row and offset by
``0.5 * Phi^-1(q)`` (in the model's normalised space), which makes every
forecast strictly increasing in the quantile level. Both models use the
quantile grids of the published checkpoints, so
``quantile_levels=[0.1, 0.2, ..., 0.9]`` and 0.5 are available without
interpolation.
"""

from __future__ import annotations

import pathlib

import torch

__all__ = [
    "CHRONOS2_QUANTILES",
    "CHRONOS_BOLT_QUANTILES",
    "build_tiny_chronos2",
    "build_tiny_chronos_bolt",
]

# Same quantile grid as amazon/chronos-2 (21 levels).
CHRONOS2_QUANTILES: list[float] = [
    0.01, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5,
    0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.99,
]  # fmt: skip

# Same quantile grid as amazon/chronos-bolt-* (9 levels).
CHRONOS_BOLT_QUANTILES: list[float] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]

# Shared tiny transformer size.
_D_MODEL = 32
_D_KV = 8
_NUM_HEADS = 4
_D_FF = 64
_NUM_LAYERS = 1

_CONTEXT_LENGTH = 512
_PATCH_SIZE = 16


def _build_seeded(factory, seed: int, monotone_quantiles: bool):
    """Run ``factory()`` under a fixed torch seed without disturbing global RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = factory()
    if monotone_quantiles:
        _make_quantile_head_monotone(model)
    return model.eval()


@torch.no_grad()
def _make_quantile_head_monotone(model, spread: float = 0.5) -> None:
    """Tie the output head across quantiles and add increasing per-quantile offsets.

    Both Chronos-2 and Chronos-Bolt lay the head's outputs out as ``(q p)``
    (quantile-major), so rows ``q*P:(q+1)*P`` belong to quantile ``q``.
    """
    quantiles = list(model.chronos_config.quantiles)
    num_q = len(quantiles)
    median = quantiles.index(0.5)
    block = model.output_patch_embedding
    for layer in (block.output_layer, block.residual_layer):
        weight = layer.weight.view(num_q, -1, layer.weight.shape[-1])
        weight.copy_(weight[median].clone().expand_as(weight))
        bias = layer.bias.view(num_q, -1)
        bias.copy_(bias[median].clone().expand_as(bias))
    offsets = spread * torch.special.ndtri(torch.tensor(quantiles, dtype=torch.float64))
    block.output_layer.bias.view(num_q, -1).add_(offsets.to(block.output_layer.bias.dtype)[:, None])


def build_tiny_chronos2(
    path: pathlib.Path, seed: int = 0, *, monotone_quantiles: bool = True
) -> pathlib.Path:
    """Save a tiny random Chronos-2 model to ``path`` and return ``path``.

    Native prediction length is ``max_output_patches * output_patch_size`` = 64.
    """
    from chronos.chronos2 import Chronos2CoreConfig, Chronos2Model

    path = pathlib.Path(path)
    path.mkdir(parents=True, exist_ok=True)

    config = Chronos2CoreConfig(
        d_model=_D_MODEL,
        d_kv=_D_KV,
        d_ff=_D_FF,
        num_layers=_NUM_LAYERS,
        num_heads=_NUM_HEADS,
        dropout_rate=0.0,
        feed_forward_proj="relu",
        attn_implementation="sdpa",
        # Extra attributes read by the chronos loaders: `chronos_config` by the model,
        # `chronos_pipeline_class` by BaseChronosPipeline.from_pretrained dispatch.
        chronos_pipeline_class="Chronos2Pipeline",
        chronos_config={
            "context_length": _CONTEXT_LENGTH,
            "input_patch_size": _PATCH_SIZE,
            "input_patch_stride": _PATCH_SIZE,
            "output_patch_size": _PATCH_SIZE,
            "max_output_patches": 4,
            "quantiles": list(CHRONOS2_QUANTILES),
            "use_reg_token": True,
            "use_arcsinh": True,
            "time_encoding_scale": _CONTEXT_LENGTH,
        },
    )
    model = _build_seeded(lambda: Chronos2Model(config), seed, monotone_quantiles)
    # save_pretrained writes config.json (architectures=["Chronos2Model"]) + model.safetensors
    model.save_pretrained(path)
    return path


def build_tiny_chronos_bolt(
    path: pathlib.Path, seed: int = 0, *, monotone_quantiles: bool = True
) -> pathlib.Path:
    """Save a tiny random Chronos-Bolt model to ``path`` and return ``path``.

    Native prediction length is 64.
    """
    from chronos.chronos_bolt import ChronosBoltModelForForecasting
    from transformers import T5Config

    path = pathlib.Path(path)
    path.mkdir(parents=True, exist_ok=True)

    config = T5Config(
        d_model=_D_MODEL,
        d_kv=_D_KV,
        d_ff=_D_FF,
        num_layers=_NUM_LAYERS,
        num_decoder_layers=_NUM_LAYERS,
        num_heads=_NUM_HEADS,
        dropout_rate=0.0,
        feed_forward_proj="relu",
        vocab_size=2,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
        initializer_factor=0.05,
        is_encoder_decoder=True,
        use_cache=False,
        chronos_pipeline_class="ChronosBoltPipeline",
        chronos_config={
            "context_length": _CONTEXT_LENGTH,
            "prediction_length": 64,
            "input_patch_size": _PATCH_SIZE,
            "input_patch_stride": _PATCH_SIZE,
            "quantiles": list(CHRONOS_BOLT_QUANTILES),
            "use_reg_token": True,
        },
    )
    model = _build_seeded(lambda: ChronosBoltModelForForecasting(config), seed, monotone_quantiles)
    # save_pretrained writes config.json (architectures=["ChronosBoltModelForForecasting"])
    # + model.safetensors
    model.save_pretrained(path)
    return path
