"""Step caches on diffusers denoisers (--cache), through diffusers' own cache hooks: `denoiser.enable_cache(config)`
for the run, `disable_cache()` after it, since the loaded pipeline serves the next run with another setting.

Which cache a family's denoiser takes is Family.step_caches (engine.registry.families), checked before anything
loads (engine.backends.run_checks.diffusers_cache). What each skips, and so what the statistics count:
- first-block (First Block Cache): whole transformer blocks after the first, while the first block's output
  barely changes from the last step (relative L1 change under `threshold`);
- taylorseer: attention layers, predicted from a Taylor expansion of their past outputs between full steps;
- faster (FasterCache): whole blocks, their output extrapolated from the last two, and the unconditional pass
  from the conditional one (CogVideoX only);
- pab (Pyramid Attention Broadcast): attention layers, their last output reused for a range of steps;
- mag (MagCache) would skip blocks from magnitude ratios calibrated per checkpoint; Kinemo has none, so it is
  refused rather than run uncalibrated.
A run's Finished.stats gain step_cache, denoiser_calls, cache_unit ("block" or "attention layer"),
cache_computed and cache_skipped: the hooked modules' calls that ran and that the cache answered instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from engine.api.errors import InvalidRequest

# diffusers' config arguments per cache, beyond the pipeline's timestep callback. Diffusers' documented defaults,
# except where said; the tests lower them so that tiny random models skip.
SETTINGS: dict[str, dict] = {
    "first-block": {"threshold": 0.05},  # diffusers' default; ParaAttention suggests 0.05-0.1 for video models
    # diffusers' default patterns ("^blocks.*attn", fully matched) hook no video family's attention (attn1, attn2):
    # Kinemo names the attention and feed-forward layers of the blocks
    "taylorseer": {
        "cache_interval": 5,
        "disable_cache_before_step": 3,
        "cache_identifiers": [r"^(transformer_blocks|blocks)\.\d+\.(attn\d?|ff|ffn)$"],
    },
    "faster": {
        "spatial_attention_block_skip_range": 2,
        "spatial_attention_timestep_skip_range": (-1, 681),
        "low_frequency_weight_update_timestep_range": (99, 641),
        "spatial_attention_block_identifiers": ["transformer_blocks"],
        "attention_weight_callback": lambda _: 0.3,
        "tensor_format": "BFCHW",
    },  # diffusers' CogVideoX example
    "pab": {"spatial_attention_block_skip_range": 2, "spatial_attention_timestep_skip_range": (100, 800)},
}
UNITS = {
    "first-block": "block",
    "taylorseer": "attention or feed-forward layer",
    "faster": "block",
    "pab": "attention layer",
}
# the hooks each cache registers on the modules it may skip (diffusers.hooks.*; the denoiser-wide ones left out)
HOOK_NAMES = {
    "first-block": ("fbc_leader_block_hook", "fbc_block_hook"),
    "taylorseer": ("taylorseer_cache",),
    "faster": ("faster_cache_block",),
    "pab": ("pyramid_attention_broadcast",),
}


def chosen_cache(choice: str, family) -> str:
    """The cache a run uses: "auto" is the family's measured default (Family.auto_cache)."""
    return family.auto_cache if choice == "auto" else choice


def cache_config(name: str, pipe, denoiser, guided: bool = True):
    """A fresh diffusers config for one denoiser (each keeps its own state). guided: the run batches a guided and
    an unguided pass (classifier-free guidance above 1), whose split FasterCache needs told."""
    import diffusers

    settings = dict(SETTINGS[name])
    if name == "first-block":
        return diffusers.FirstBlockCacheConfig(**settings)
    if name == "taylorseer":
        return diffusers.TaylorSeerCacheConfig(taylor_factors_dtype=denoiser.dtype, **settings)

    def timestep():
        return pipe.current_timestep

    if name == "faster":
        return diffusers.FasterCacheConfig(
            current_timestep_callback=timestep, is_guidance_distilled=not guided, **settings
        )
    return diffusers.PyramidAttentionBroadcastConfig(current_timestep_callback=timestep, **settings)


def denoisers(pipe) -> list:
    """The pipeline's transformer(s): Wan 2.2 A14B denoises high-noise steps with one, low-noise with another."""
    found = [getattr(pipe, name, None) for name in ("transformer", "transformer_2")]
    return [d for d in found if d is not None]


class SkipCounter:
    """Counts, for every module a cache hooked, the calls it got and those it computed. A call is computed when
    any of the module's children runs; torch's pre-hook on the module itself fires either way, since diffusers'
    hooks replace its forward, not its __call__."""

    def __init__(self):
        self.calls = self.computed = self.denoiser_calls = 0
        self.handles: list = []
        self.pending: set[int] = set()

    def watch(self, module) -> None:
        key = id(module)

        def called(*_):
            self.calls += 1
            self.pending.add(key)

        def child_ran(*_):
            if key in self.pending:
                self.pending.discard(key)
                self.computed += 1

        self.handles.append(module.register_forward_pre_hook(called))
        self.handles.extend(child.register_forward_pre_hook(child_ran) for child in module.children())

    def watch_denoiser(self, denoiser) -> None:
        self.handles.append(denoiser.register_forward_pre_hook(lambda *_: self._one_call()))

    def _one_call(self) -> None:
        self.denoiser_calls += 1

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()


def _hooked(denoiser, names: tuple[str, ...]) -> list:
    found = []
    for module in denoiser.modules():
        registry = getattr(module, "_diffusers_hook", None)
        if module is not denoiser and registry is not None and any(n in registry.hooks for n in names):
            found.append(module)
    return found


def check_blocks(name: str, denoiser, model_id: str) -> None:
    if name != "first-block":
        return
    blocks = next((getattr(denoiser, a) for a in ("transformer_blocks", "blocks") if hasattr(denoiser, a)), [])
    if len(blocks) < 2:  # the first block decides for the others: with one block there is nothing to skip
        raise InvalidRequest(f"--cache first-block: {model_id}'s denoiser has {len(blocks)} block; it needs two")


@contextmanager
def step_cache(
    pipe, family, choice: str, stats: dict, model_id: str = "the model", guided: bool = True
) -> Iterator[None]:
    """The chosen cache on the pipeline's denoiser(s) while the block runs; its counts go into stats after."""
    name = chosen_cache(choice, family)
    if name == "off":
        yield
        return
    counter, enabled = SkipCounter(), []
    try:
        for denoiser in denoisers(pipe):
            check_blocks(name, denoiser, model_id)
            denoiser.enable_cache(cache_config(name, pipe, denoiser, guided))
            enabled.append(denoiser)
            counter.watch_denoiser(denoiser)
            for module in _hooked(denoiser, HOOK_NAMES[name]):
                counter.watch(module)
        yield
    finally:
        counter.remove()
        for denoiser in enabled:
            denoiser.disable_cache()
        stats.update(
            step_cache=name,
            denoiser_calls=counter.denoiser_calls,
            cache_unit=UNITS[name],
            cache_computed=counter.computed,
            cache_skipped=counter.calls - counter.computed,
        )
