"""Build a tiny, randomly initialised TabPFN classifier checkpoint for offline tests.

The checkpoint is produced with tabpfn's own v2 architecture
(``tabpfn.architectures.tabpfn_v2``: ``TabPFNV2Config`` / ``get_architecture``) and
written in the same layout ``tabpfn.model_loading.save_tabpfn_model`` writes and
``tabpfn.model_loading.load_model`` reads::

    {"state_dict": {...tensors...}, "config": asdict(TabPFNV2Config), "architecture_name": "tabpfn_v2"}

so ``TabPFNClassifier(model_path=path, device="cpu")`` goes through tabpfn's normal
loading path (``Checkpoint(path).load()`` -> ``parse_config`` -> ``get_architecture``
-> strict ``load_state_dict``). Because the file exists, tabpfn never tries to
download anything. The weights are random, so predictions are meaningless; the point
is to exercise the real fit/predict plumbing in well under a second on CPU.

No ``inference_config`` is stored, exactly like the published v2 checkpoints: tabpfn
then uses its built-in v2 defaults (``InferenceConfig.get_default("multiclass", V2)``).

Suggested (fast, deterministic) usage::

    TabPFNClassifier(
        model_path=path, device="cpu", n_estimators=1, random_state=0,
        inference_precision=torch.float32, fit_mode="fit_preprocessors",
    )

For more than 1000 training rows on CPU pass ``ignore_pretraining_limits=True``
(v2 CPU sample limit); above 200 rows tabpfn emits a "Running on CPU ... may be
slow" UserWarning, which is harmless.

Trap: tabpfn infers the *model version* from the file NAME (substrings such as
"v2.5", "v2.6", "v3", "v3.5"); that only changes CPU sample limits / download
fallback, but keep the name free of those substrings (the default "tiny_tabpfn.ckpt"
style is fine) so it resolves to v2, matching the stored architecture.
"""

from __future__ import annotations

import dataclasses
import pathlib

import torch

# Tiny but valid: emsize must be divisible by nhead and by 4 (column embeddings use
# emsize // 4); max_num_classes=10 matches the v2 inference config's
# MAX_NUMBER_OF_CLASSES.
_TINY_CONFIG = {
    "emsize": 16,
    "nlayers": 1,
    "nhead": 2,
    "features_per_group": 2,
    "max_num_classes": 10,
    "seed": 0,
}

_ARCHITECTURE_NAME = "tabpfn_v2"


def build_tiny_tabpfn_checkpoint(path: pathlib.Path, seed: int = 0) -> pathlib.Path:
    """Write a tiny random-weight TabPFN v2 classifier checkpoint to ``path``.

    Args:
        path: Destination file. A ``.safetensors`` suffix writes tabpfn's safetensors
            format (via ``tabpfn.checkpoint.save_as_safetensors``); anything else
            (e.g. ``.ckpt``) writes the classic ``torch.save`` checkpoint dict.
        seed: Seed for the random weight initialisation. The global torch RNG state
            is left untouched.

    Returns:
        ``path`` (as a ``pathlib.Path``).
    """
    from tabpfn.architectures import tabpfn_v2

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    config, unused = tabpfn_v2.parse_config(dict(_TINY_CONFIG))
    assert not unused, unused

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = tabpfn_v2.get_architecture(config)
        # TabPFN zero-initialises every residual-branch output projection (attention
        # out_projection, mlp[2]). Left at zero, no information reaches the target
        # column and every test row gets the identical probability vector. Give them
        # random values so predictions depend on the inputs (still meaningless).
        with torch.no_grad():
            for param in model.parameters():
                if param.ndim == 2 and not param.any():
                    torch.nn.init.xavier_uniform_(param)

    state_dict = {
        k: v.detach().to("cpu", copy=True).contiguous()
        for k, v in model.state_dict().items()
    }
    checkpoint = {
        "state_dict": state_dict,
        # Plain python types only, so the file also loads under torch.load's
        # weights_only=True default (torch >= 2.6).
        "config": dataclasses.asdict(config),
        "architecture_name": _ARCHITECTURE_NAME,
    }

    if path.suffix == ".safetensors":
        from tabpfn.checkpoint import save_as_safetensors

        save_as_safetensors(checkpoint, path)
    else:
        torch.save(checkpoint, path)
    return path
