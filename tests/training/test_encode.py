"""The one encode path: latents through the on-disk cache, keyed by 8-bit image content."""

from __future__ import annotations

import torch

from splatent_viewer.codecs import load_codec
from splatent_viewer.training.encode import ENV_VAR, LatentCache, default_cache_root, encode_images, image_key


def test_latent_cache_roundtrip_and_keys(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env"))
    assert default_cache_root() == tmp_path / "env"
    assert LatentCache(codec_name="taef2").dir == tmp_path / "env" / "taef2"
    image = torch.randint(0, 255, (16, 16, 3), dtype=torch.uint8)
    other = image.clone()
    other[0, 0, 0] ^= 1
    assert image_key(image) != image_key(other)
    assert image_key(image) != image_key(image, extra="bg")
    assert image_key(image) == image_key(image.clone())
    # the core loader's float images and nerfstudio's uint8 images of one PNG share a key
    assert image_key(image.float() / 255.0) == image_key(image)
    cache = LatentCache(codec_name="taef2", root=tmp_path / "explicit")
    key = image_key(image)
    assert cache.get(key) is None
    latent = torch.randn(32, 2, 2)
    cache.put(key, latent)
    assert torch.equal(cache.get(key), latent)
    assert [p.name for p in cache.dir.iterdir()] == [f"{key}.safetensors"]  # no temp files left
    cache.path(key).write_bytes(b"truncated")
    assert cache.get(key) is None  # a corrupt entry is a miss, not a crash


def test_encode_images_reads_back_what_it_cached_and_batches_by_size(tmp_path) -> None:
    codec = load_codec("taef2")
    g = torch.Generator().manual_seed(0)
    images = [
        torch.rand(32, 32, 3, generator=g),
        torch.rand(32, 32, 3, generator=g),
        torch.rand(16, 40, 3, generator=g),
    ]
    cache = LatentCache(codec_name=codec.name, root=tmp_path)
    first, stats = encode_images(images=images, codec=codec, device="cpu", cache=cache, batch_size=4)
    assert (stats.hits, stats.encoded) == (0, 3)
    assert [tuple(t.shape) for t in first] == [(32, 4, 4), (32, 4, 4), (32, 2, 5)]
    with torch.no_grad():
        direct = codec.encode(images[2].permute(2, 0, 1)[None])[0]
    torch.testing.assert_close(first[2], direct)
    again, stats = encode_images(images=images, codec=codec, device="cpu", cache=cache)
    assert (stats.hits, stats.encoded) == (0 + 3, 0)
    # the second pass reads the first pass's latents back
    for a, b in zip(again, first):
        torch.testing.assert_close(a, b)
    uncached, stats = encode_images(images=images[:1], codec=codec, device="cpu")
    assert (stats.hits, stats.encoded) == (0, 1) and len(list(cache.dir.iterdir())) == 3


def test_an_unwritable_cache_only_costs_re_encoding(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cache = LatentCache(codec_name="taef2", root=blocker)  # <root>/taef2 cannot be made under a file
    latents, stats = encode_images(images=[torch.rand(16, 16, 3)], codec=load_codec("taef2"), device="cpu", cache=cache)
    assert stats.encoded == 1 and latents[0].shape == (32, 2, 2)
