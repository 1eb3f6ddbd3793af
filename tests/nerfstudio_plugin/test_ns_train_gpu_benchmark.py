"""benchmarks/ns_train_gpu.py: the splatent model overrides reach the nerfstudio config (and only splatent's)."""

from __future__ import annotations

import pytest


def test_overrides_reach_splatent_and_not_splatfacto(tmp_path, load_benchmark):
    bench = load_benchmark("ns_train_gpu")
    args = bench.Args(decoded_weight=1.0, decoded_every=1, refiner="none")
    overrides = bench.splatent_overrides(args)
    assert overrides == {"loss.decoded_weight": 1.0, "loss.decoded_every": 1, "refiner": "none"}
    assert bench.splatent_overrides(bench.Args()) == {}  # nothing given: the method's defaults

    cfg = bench._config("splatent", tmp_path / "scene", "nerfstudio", 10, tmp_path, "cpu", overrides)
    model = cfg.pipeline.model
    assert (model.loss.decoded_weight, model.loss.decoded_every, model.refiner) == (1.0, 1, "none")
    assert cfg.max_num_iterations == 10
    default = bench._config("splatent", tmp_path / "scene", "nerfstudio", 10, tmp_path, "cpu").pipeline.model
    assert (default.loss.decoded_weight, default.refiner) == (0.0, "guided")
    splatfacto = bench._config("splatfacto", tmp_path / "scene", "nerfstudio", 10, tmp_path, "cpu", overrides)
    assert not hasattr(splatfacto.pipeline.model, "loss")
    # stock splatfacto: nerfstudio's own Adam config (splatent's fuses on CUDA), same rates
    from nerfstudio.engine.optimizers import AdamOptimizerConfig

    assert "latents" not in splatfacto.optimizers
    for name, group in splatfacto.optimizers.items():
        assert type(group["optimizer"]) is AdamOptimizerConfig
        assert group["optimizer"].lr == cfg.optimizers[name]["optimizer"].lr

    with pytest.raises(ValueError, match="no field 'loss.decoded_wieght'"):
        bench._config("splatent", tmp_path / "scene", "nerfstudio", 10, tmp_path, "cpu", {"loss.decoded_wieght": 1.0})


def test_set_takes_any_model_field_as_json_or_text(tmp_path, load_benchmark):
    bench = load_benchmark("ns_train_gpu")
    args = bench.Args(set=("num_downscales=0", "background_color=black", "loss.rgb_weight=0.5"))
    overrides = bench.splatent_overrides(args)
    assert overrides == {"num_downscales": 0, "background_color": "black", "loss.rgb_weight": 0.5}
    model = bench._config("splatent", tmp_path / "scene", "nerfstudio", 10, tmp_path, "cpu", overrides).pipeline.model
    assert (model.num_downscales, model.background_color, model.loss.rgb_weight) == (0, "black", 0.5)
    with pytest.raises(ValueError, match="FIELD=VALUE"):
        bench.splatent_overrides(bench.Args(set=("num_downscales",)))
