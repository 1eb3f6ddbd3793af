"""The refiner model: embedded UNet (identity at init, gradients, grid attention) and the sd-turbo backbone
built from a tiny local SD-Turbo-like folder (random UNet, tiny CLIP text encoder, hand-written tokenizer)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from splatent_viewer.errors import SplatentError
from splatent_viewer.refine import EmbeddedUNetConfig, Refiner, RefinerConfig, fit_latent_normalisation
from splatent_viewer.refine.checkpoint import load_refiner, save_refiner
from splatent_viewer.refine.grid import tile_grid

TINY_UNET = EmbeddedUNetConfig(
    block_out_channels=(16, 16), attention_from_level=1, attention_head_dim=8, norm_num_groups=8
)


def _embedded(*, channels: int = 6, k: int = 3, **overrides) -> Refiner:
    torch.manual_seed(0)
    return RefinerConfig(latent_channels=channels, num_references=k, embedded=TINY_UNET, **overrides).setup()


def _perturb(refiner: Refiner) -> Refiner:
    """Gives the zero-initialised output conv random weights (as training would), so the UNet's residual shows."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in refiner.backbone.unet.conv_out.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return refiner


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_untrained_embedded_refiner_is_the_identity(k: int) -> None:
    refiner = _embedded(k=3)
    target = torch.randn(2, 6, 5, 7)  # odd sizes: the grid is padded to the UNet's factor
    refs = torch.randn(2, k, 6, 5, 7)
    out = refiner(target=target, references=refs)
    assert out.shape == target.shape
    assert torch.equal(out, target)


def test_identity_holds_with_per_channel_normalisation() -> None:
    latents = torch.randn(3, 6, 4, 4) * torch.arange(1.0, 7.0)[:, None, None] + 2
    shift, scale = fit_latent_normalisation(latents)
    assert len(shift) == len(scale) == 6
    normed = (latents - torch.tensor(shift)[:, None, None]) * torch.tensor(scale)[:, None, None]
    torch.testing.assert_close(normed.mean(dim=(0, 2, 3)), torch.zeros(6), atol=1e-5, rtol=0)
    torch.testing.assert_close(normed.std(dim=(0, 2, 3)), torch.ones(6), atol=1e-4, rtol=0)
    refiner = _embedded(latent_shift=shift, latent_scale=scale)
    torch.testing.assert_close(refiner(target=latents[:1], references=latents[None, 1:]), latents[:1])


def test_gradients_reach_every_unet_parameter() -> None:
    refiner = _embedded()
    target, refs, goal = torch.randn(1, 6, 4, 4), torch.randn(1, 3, 6, 4, 4), torch.randn(1, 6, 4, 4)
    (refiner(target=target, references=refs) - goal).square().mean().backward()
    conv_out = {id(p) for p in refiner.backbone.unet.conv_out.parameters()}
    for name, p in refiner.named_parameters():
        assert p.grad is not None and p.grad.isfinite().all(), name
        assert (p.grad.abs().sum() > 0) == (id(p) in conv_out), name  # zero output conv blocks the rest at init
    _perturb(refiner).zero_grad()
    (refiner(target=target, references=refs) - goal).square().mean().backward()
    dead = [name for name, p in refiner.named_parameters() if not p.grad.abs().sum() > 0]
    assert not dead, f"no gradient reaches {dead}"


def test_target_attends_to_references_and_batches_stay_apart() -> None:
    refiner = _perturb(_embedded()).eval()
    target, refs = torch.randn(2, 6, 4, 4), torch.randn(2, 3, 6, 4, 4)
    with torch.no_grad():
        base = refiner(target=target, references=refs)
        assert not torch.allclose(base, target)
        changed = refs.clone()
        changed[0, 2] += 1.0  # last reference of the first batch element only
        out = refiner(target=target, references=changed)
    assert not torch.allclose(out[0], base[0]), "the target ignores its references"
    torch.testing.assert_close(out[1], base[1], rtol=0, atol=1e-6)


def test_fewer_references_leave_zero_cells() -> None:
    # one reference in a k=3 refiner == that reference and two explicit all-zero references
    refiner = _perturb(_embedded()).eval()
    target, ref = torch.randn(1, 6, 4, 4), torch.randn(1, 1, 6, 4, 4)
    with torch.no_grad():
        one = refiner(target=target, references=ref)
        padded = refiner(target=target, references=torch.cat([ref, torch.zeros(1, 2, 6, 4, 4)], dim=1))
    torch.testing.assert_close(one, padded, rtol=0, atol=0)


def test_bad_inputs_are_refused() -> None:
    refiner = _embedded(k=2)
    with pytest.raises(SplatentError, match="at most 2"):
        refiner(target=torch.randn(1, 6, 4, 4), references=torch.randn(1, 3, 6, 4, 4))
    with pytest.raises(SplatentError, match="6-channel"):
        refiner(target=torch.randn(1, 4, 4, 4), references=torch.randn(1, 2, 4, 4, 4))
    with pytest.raises(SplatentError, match="one per channel"):
        RefinerConfig(latent_channels=6, latent_scale=(1.0, 2.0)).validate()
    with pytest.raises(SplatentError, match="residual"):
        RefinerConfig(prediction_type="epsilon", alpha_cumprod=0.5).setup()


def test_default_embedded_refiner_is_compact() -> None:
    refiner = RefinerConfig().setup()
    assert sum(p.numel() for p in refiner.parameters()) < 10_000_000
    kinds = [type(b).__name__ for b in refiner.backbone.unet.down_blocks]
    assert kinds == ["DownBlock2D", "DownBlock2D", "AttnDownBlock2D"], "attention only at 1/4 of the grid"


# ---------------------------------------------------------------- sd-turbo backbone
def make_tiny_sd_turbo(folder: Path, *, prediction_type: str = "epsilon") -> Path:
    """An SD-Turbo-shaped folder with tiny random models (unet/, scheduler/, text_encoder/, tokenizer/)."""
    from diffusers import EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(16, 32),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16,
        norm_num_groups=8,
        attention_head_dim=8,
    ).save_pretrained(folder / "unet")
    EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", prediction_type=prediction_type
    ).save_pretrained(folder / "scheduler")
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in "abcdefghijklmnopqrstuvwxyz":
        vocab[ch] = len(vocab)
        vocab[ch + "</w>"] = len(vocab)
    (folder / "tokenizer").mkdir(parents=True)
    (folder / "tokenizer" / "vocab.json").write_text(json.dumps(vocab))
    (folder / "tokenizer" / "merges.txt").write_text("#version: 0.2\n")
    (folder / "tokenizer" / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 8}))
    CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(vocab),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=8,
        )
    ).save_pretrained(folder / "text_encoder")
    return folder


def _sd_refiner(folder: Path, **overrides) -> Refiner:
    return RefinerConfig(
        backbone="sd-turbo",
        codec="sd-turbo",
        latent_channels=4,
        num_references=1,
        sd_turbo_path=folder,
        prompt="a sharp photo",
        **overrides,
    ).setup()


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_sd_turbo_backbone_forms_x0_from_the_scheduler(tmp_path: Path, prediction_type: str) -> None:
    from diffusers import EulerDiscreteScheduler
    from transformers import CLIPTextModel, CLIPTokenizer

    folder = make_tiny_sd_turbo(tmp_path / "sd", prediction_type=prediction_type)
    refiner = _sd_refiner(folder)
    a = float(EulerDiscreteScheduler.from_pretrained(folder, subfolder="scheduler").alphas_cumprod[300])
    assert refiner.config.prediction_type == prediction_type
    assert refiner.config.alpha_cumprod == pytest.approx(a, rel=1e-6)
    tok = CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer")
    ids = tok("a sharp photo", padding="max_length", max_length=8, truncation=True, return_tensors="pt").input_ids
    with torch.no_grad():
        embeds = CLIPTextModel.from_pretrained(folder, subfolder="text_encoder")(ids)[0]
    torch.testing.assert_close(refiner.backbone.prompt_embeds, embeds)

    target, refs = torch.randn(2, 4, 4, 4), torch.randn(2, 1, 4, 4, 4)
    with torch.no_grad():
        out = refiner(target=target, references=refs)
        grid = tile_grid(target=target, references=refs)
        pred = refiner.backbone.unet(grid, 300, encoder_hidden_states=embeds.expand(2, -1, -1)).sample
    x0 = (
        (grid - (1 - a) ** 0.5 * pred) / a**0.5
        if prediction_type == "epsilon"
        else a**0.5 * grid - (1 - a) ** 0.5 * pred
    )
    torch.testing.assert_close(out, x0[..., :4, :4], rtol=1e-4, atol=1e-5)


def test_sd_turbo_refiner_needs_no_text_encoder_after_saving(tmp_path: Path) -> None:
    folder = make_tiny_sd_turbo(tmp_path / "sd")
    refiner = _sd_refiner(folder).eval()
    target, refs = torch.randn(1, 4, 5, 3), torch.randn(1, 1, 4, 5, 3)  # 5x6 grid → padded to 6x6
    with torch.no_grad():
        before = refiner(target=target, references=refs)
    save_refiner(refiner, tmp_path / "saved")
    shutil.rmtree(folder)  # no UNet folder, no text encoder, no tokenizer any more
    loaded = load_refiner(tmp_path / "saved")
    assert "text_encoder" not in dict(loaded.named_modules())
    torch.testing.assert_close(loaded.backbone.prompt_embeds, refiner.backbone.prompt_embeds, rtol=0, atol=0)
    assert loaded.config == refiner.config
    with torch.no_grad():
        torch.testing.assert_close(loaded(target=target, references=refs), before, rtol=0, atol=0)


def test_incomplete_sd_turbo_folder_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(SplatentError, match="does not exist.*huggingface-cli download stabilityai/sd-turbo"):
        _sd_refiner(tmp_path / "nothing")
    folder = make_tiny_sd_turbo(tmp_path / "sd")
    shutil.rmtree(folder / "text_encoder")
    with pytest.raises(SplatentError, match=r"lacks text_encoder/config\.json.*huggingface-cli download"):
        _sd_refiner(folder)
    with pytest.raises(SplatentError, match="4-channel"):
        RefinerConfig(
            backbone="sd-turbo", latent_channels=32, sd_turbo_path=make_tiny_sd_turbo(tmp_path / "sd2")
        ).setup()
