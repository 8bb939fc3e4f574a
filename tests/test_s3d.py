"""vclip.s3d: building blocks against hand-computed references, official key names, strict loading."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vclip.s3d import (
    OFFICIAL_WEIGHTS_URL,
    S3D,
    InceptionBlock,
    S3DConfig,
    STConv3D,
    TFSameMaxPool3d,
    load_s3d_weights,
    space_to_depth,
)

# ---------------------------------------------------------------------------------------------------
# The official s3d_howto100m.pth video keys, written out from the published architecture (MIL-NCE's
# s3dg.py) independently of vclip.s3d: stem, then (in, b0, b1a, b1b, b2a, b2b, b3b) per inception block.
BN = ("weight", "bias", "running_mean", "running_var")
OFFICIAL_INCEPTION = {
    "mixed_3b": (192, 64, 96, 128, 16, 32, 32),
    "mixed_3c": (256, 128, 128, 192, 32, 96, 64),
    "mixed_4b": (480, 192, 96, 208, 16, 48, 64),
    "mixed_4c": (512, 160, 112, 224, 24, 64, 64),
    "mixed_4d": (512, 128, 128, 256, 24, 64, 64),
    "mixed_4e": (512, 112, 144, 288, 32, 64, 64),
    "mixed_4f": (528, 256, 160, 320, 32, 128, 128),
    "mixed_5b": (832, 256, 160, 320, 32, 128, 128),
    "mixed_5c": (832, 384, 192, 384, 48, 128, 128),
}
TEXT_MODULE_KEYS = ("text_module.word_embd.weight", "text_module.fc1.weight", "text_module.fc1.bias",
                    "text_module.fc2.weight", "text_module.fc2.bias")


def _conv(prefix: str, out: int, inp: int, kernel: tuple[int, int, int]) -> dict[str, tuple[int, ...]]:
    keys = {f"{prefix}.conv1.weight": (out, inp, *kernel)}
    keys.update({f"{prefix}.bn1.{name}": (out,) for name in BN})
    return keys


def _sep(prefix: str, out: int, inp: int) -> dict[str, tuple[int, ...]]:
    keys = _conv(prefix, out, inp, (1, 3, 3))
    keys[f"{prefix}.conv2.weight"] = (out, out, 3, 1, 1)
    keys.update({f"{prefix}.bn2.{name}": (out,) for name in BN})
    return keys


def official_video_keys() -> dict[str, tuple[int, ...]]:
    keys = _conv("conv1", 64, 24, (2, 4, 4))
    keys.update(_conv("conv_2b", 64, 64, (1, 1, 1)))
    keys.update(_sep("conv_2c", 192, 64))
    keys.update({"gating.fc.weight": (192, 192), "gating.fc.bias": (192,)})
    for block, (inp, b0, b1a, b1b, b2a, b2b, b3b) in OFFICIAL_INCEPTION.items():
        keys.update(_conv(f"{block}.conv_b0", b0, inp, (1, 1, 1)))
        keys.update(_conv(f"{block}.conv_b1_a", b1a, inp, (1, 1, 1)))
        keys.update(_sep(f"{block}.conv_b1_b", b1b, b1a))
        keys.update(_conv(f"{block}.conv_b2_a", b2a, inp, (1, 1, 1)))
        keys.update(_sep(f"{block}.conv_b2_b", b2b, b2a))
        keys.update(_conv(f"{block}.conv_b3_b", b3b, inp, (1, 1, 1)))
        for i, width in enumerate((b0, b1b, b2b, b3b)):
            keys[f"{block}.gating_b{i}.fc.weight"] = (width, width)
            keys[f"{block}.gating_b{i}.fc.bias"] = (width,)
    keys.update({"fc.weight": (512, 1024), "fc.bias": (512,)})
    return keys


def _official_state(with_counters: bool, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in official_video_keys().items():
        value = torch.rand(shape, generator=gen)
        state[key] = value + 0.5 if key.endswith("running_var") else value - 0.5
    if with_counters:
        for key in official_video_keys():
            if key.endswith("running_mean"):
                state[key.replace("running_mean", "num_batches_tracked")] = torch.tensor(7)
    # The unused text branch (its word table is really (66250, 300); a small stand-in keeps the test fast).
    for key in TEXT_MODULE_KEYS:
        state[key] = torch.zeros(3, 2)
    return state


def test_state_dict_keys_and_shapes_are_the_official_ones():
    model_shapes = {k: tuple(v.shape) for k, v in S3D().state_dict().items()
                    if not k.endswith("num_batches_tracked")}
    assert model_shapes == official_video_keys()


@pytest.mark.parametrize("with_counters", [True, False])
def test_official_checkpoint_loads_strictly(tmp_path, with_counters):
    state = _official_state(with_counters)
    path = tmp_path / "s3d_howto100m.pth"
    torch.save(state, path)
    model = load_s3d_weights(path)
    assert not model.training
    loaded = model.state_dict()
    for key in official_video_keys():
        torch.testing.assert_close(loaded[key], state[key], rtol=0, atol=0)
    assert not any(k.startswith("text_module") for k in loaded)


def test_dataparallel_prefix_is_stripped(tmp_path):
    state = {f"module.{k}": v for k, v in _official_state(False).items()}
    torch.save(state, tmp_path / "dp.pth")
    model = load_s3d_weights(tmp_path / "dp.pth")
    torch.testing.assert_close(model.fc.bias, state["module.fc.bias"])


def test_missing_unexpected_and_misshapen_keys_fail(tmp_path):
    state = _official_state(False)
    del state["mixed_4d.conv_b1_b.bn2.running_var"]
    torch.save(state, tmp_path / "missing.pth")
    with pytest.raises(ValueError, match=r"mixed_4d\.conv_b1_b\.bn2\.running_var"):
        load_s3d_weights(tmp_path / "missing.pth")

    state = _official_state(False)
    state["mixed_6a.conv_b0.conv1.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "unexpected.pth")
    with pytest.raises(ValueError, match="mixed_6a"):
        load_s3d_weights(tmp_path / "unexpected.pth")

    state = _official_state(False)
    state["fc.weight"] = torch.zeros(256, 1024)
    torch.save(state, tmp_path / "shape.pth")
    with pytest.raises(ValueError, match=r"fc\.weight.*\(256, 1024\).*\(512, 1024\)"):
        load_s3d_weights(tmp_path / "shape.pth")


def test_missing_weights_file_says_where_official_weights_come_from(tmp_path):
    with pytest.raises(FileNotFoundError, match=OFFICIAL_WEIGHTS_URL.replace(".", r"\.")):
        load_s3d_weights(tmp_path / "nope.pth")


# ---------------------------------------------------------------------------------------------------
# Building blocks.

def _tf_same_maxpool_reference(x, kernel, stride):
    """TensorFlow's SAME max pooling written from its definition: out = ceil(L / s), total pad
    max((out - 1) s + k - L, 0) with the smaller half first, padded with -inf, no ceil mode."""
    pads = []
    for dim, (k, s) in enumerate(zip(kernel, stride)):
        length = x.shape[2 + dim]
        out = math.ceil(length / s)
        total = max((out - 1) * s + k - length, 0)
        pads.append((total // 2, total - total // 2))
    flat = [p for pair in reversed(pads) for p in pair]
    return F.max_pool3d(F.pad(x, flat, value=-math.inf), kernel, stride)


def _reference_explicit_pad_maxpool(x, kernel, stride):
    """The reference's pooling written out: pad max(k - s, 0) (smaller half first) with -inf, then
    enumerate every window start 0, s, 2s, ... that lies inside the padded input (ceil mode)."""
    pads = []
    for k, s in zip(kernel, stride):
        total = max(k - s, 0)
        pads.append((total // 2, total - total // 2))
    flat = [p for pair in reversed(pads) for p in pair]
    padded = F.pad(x, flat, value=-math.inf)
    starts = [range(0, s * (-(-(padded.shape[2 + d] - k) // s) + 1), s)  # ceil((L - k) / s) + 1 windows
              for d, (k, s) in enumerate(zip(kernel, stride))]
    out = torch.empty(*x.shape[:2], *(len(r) for r in starts))
    for i, t in enumerate(starts[0]):
        for j, h in enumerate(starts[1]):
            for m, w in enumerate(starts[2]):
                window = padded[:, :, t:t + kernel[0], h:h + kernel[1], w:w + kernel[2]]
                out[:, :, i, j, m] = window.amax(dim=(2, 3, 4))
    return out


@pytest.mark.parametrize("kernel,stride,size", [
    ((1, 3, 3), (1, 2, 2), (3, 7, 9)),
    ((3, 3, 3), (2, 2, 2), (5, 7, 11)),
    ((3, 3, 3), (2, 2, 2), (1, 3, 5)),
])
def test_tf_same_maxpool_on_odd_sizes_matches_explicit_padding(kernel, stride, size):
    x = torch.rand(2, 3, *size)  # non-negative, as after the ReLU that precedes every pool in S3D
    ours = TFSameMaxPool3d(kernel, stride)(x)
    expected = _reference_explicit_pad_maxpool(x, kernel, stride)
    assert ours.shape == expected.shape == _tf_same_maxpool_reference(x, kernel, stride).shape
    torch.testing.assert_close(ours, expected, rtol=0, atol=0)


@pytest.mark.parametrize("kernel,stride,size", [
    ((1, 3, 3), (1, 2, 2), (3, 8, 6)),
    ((3, 3, 3), (2, 2, 2), (4, 6, 10)),
    ((2, 2, 2), (2, 2, 2), (4, 6, 8)),  # k == s: no padding at all
])
def test_tf_same_maxpool_on_even_sizes_equals_tensorflow_same(kernel, stride, size):
    x = torch.rand(2, 3, *size)
    ours = TFSameMaxPool3d(kernel, stride)(x)
    torch.testing.assert_close(ours, _tf_same_maxpool_reference(x, kernel, stride), rtol=0, atol=0)


def test_tf_same_maxpool_hand_values():
    pool = TFSameMaxPool3d((1, 1, 3), (1, 1, 2))
    # Odd length 5, pad 0/1: windows [3,1,4] [4,1,5] [5,pad]; TensorFlow pads 1/1: [pad,3,1] [1,4,1] [1,5,pad].
    x = torch.tensor([3.0, 1.0, 4.0, 1.0, 5.0]).view(1, 1, 1, 1, 5)
    assert pool(x).flatten().tolist() == [4.0, 5.0, 5.0]
    assert _tf_same_maxpool_reference(x, (1, 1, 3), (1, 1, 2)).flatten().tolist() == [3.0, 4.0, 5.0]
    # Even length 6: both pad 0/1: [3,1,4] [4,1,5] [5,9,pad].
    x = torch.tensor([3.0, 1.0, 4.0, 1.0, 5.0, 9.0]).view(1, 1, 1, 1, 6)
    assert pool(x).flatten().tolist() == [4.0, 5.0, 9.0]


def test_space_to_depth_layout():
    x = torch.randn(2, 3, 4, 6, 8)
    y = space_to_depth(x)
    assert y.shape == (2, 24, 2, 3, 4)
    for dt in range(2):
        for dh in range(2):
            for dw in range(2):
                group = (dt * 4 + dh * 2 + dw) * 3
                torch.testing.assert_close(y[:, group:group + 3], x[:, :, dt::2, dh::2, dw::2])


def _randomise_batchnorm(module: torch.nn.Module, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    for bn in module.modules():
        if isinstance(bn, torch.nn.BatchNorm3d):
            n = bn.num_features
            bn.weight.data = torch.rand(n, generator=gen) + 0.5
            bn.bias.data = torch.randn(n, generator=gen) * 0.1
            bn.running_mean = torch.randn(n, generator=gen) * 0.1
            bn.running_var = torch.rand(n, generator=gen) + 0.5


def _unit(conv: STConv3D, x: torch.Tensor, padding: tuple[int, int, int]) -> torch.Tensor:
    """conv -> BN(eval) -> ReLU by hand; for a separable unit, spatial then temporal."""
    def bn(z, m):
        return F.batch_norm(z, m.running_mean, m.running_var, m.weight, m.bias, False, 0.0, m.eps)
    if conv.separable:
        z = F.relu(bn(F.conv3d(x, conv.conv1.weight, padding=(0, padding[1], padding[2])), conv.bn1))
        return F.relu(bn(F.conv3d(z, conv.conv2.weight, padding=(padding[0], 0, 0)), conv.bn2))
    return F.relu(bn(F.conv3d(x, conv.conv1.weight, padding=padding), conv.bn1))


def _gate(gating, z):
    weights = torch.sigmoid(z.mean(dim=(2, 3, 4)) @ gating.fc.weight.T + gating.fc.bias)
    return z * weights[:, :, None, None, None]


def test_gated_inception_block_matches_hand_composition():
    torch.manual_seed(0)
    block = InceptionBlock(7, (4, 3, 5, 2, 3, 6)).eval()
    _randomise_batchnorm(block)
    assert block.conv_b1_b.conv1.weight.shape == (5, 3, 1, 3, 3)  # spatial part of the separable conv
    assert block.conv_b1_b.conv2.weight.shape == (5, 5, 3, 1, 1)  # temporal part
    x = torch.randn(2, 7, 3, 5, 6)
    b0 = _unit(block.conv_b0, x, (0, 0, 0))
    b1 = _unit(block.conv_b1_b, _unit(block.conv_b1_a, x, (0, 0, 0)), (1, 1, 1))
    b2 = _unit(block.conv_b2_b, _unit(block.conv_b2_a, x, (0, 0, 0)), (1, 1, 1))
    pooled = F.max_pool3d(F.pad(x, (1, 1) * 3, value=-math.inf), 3, stride=1)
    b3 = _unit(block.conv_b3_b, pooled, (0, 0, 0))
    expected = torch.cat([_gate(block.gating_b0, b0), _gate(block.gating_b1, b1),
                          _gate(block.gating_b2, b2), _gate(block.gating_b3, b3)], dim=1)
    with torch.no_grad():
        out = block(x)
    assert out.shape == (2, 4 + 5 + 3 + 6, 3, 5, 6)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_batchnorm_eps_is_the_reference_default_and_configurable():
    assert S3D().conv1.bn1.eps == 1e-5
    assert S3D(S3DConfig(bn_eps=1e-3)).mixed_5c.conv_b0.bn1.eps == 1e-3


# ---------------------------------------------------------------------------------------------------
# The whole network.

def test_small_input_outputs_and_head():
    torch.manual_seed(0)
    model = S3D().eval()
    x = torch.rand(2, 3, 16, 64, 64)
    with torch.no_grad():
        out = model(x)
        single = model(x[1:])
    assert out["video_embedding"].shape == (2, 512) and out["mixed_5c"].shape == (2, 1024)
    torch.testing.assert_close(out["video_embedding"], model.fc(out["mixed_5c"]))
    torch.testing.assert_close(single["video_embedding"][0], out["video_embedding"][1], rtol=1e-4, atol=1e-5)


def test_full_size_shapes_of_one_second_chunk():
    """One 30-frame 224x224 chunk (the recipe's unit): intermediate sizes of the reference arithmetic."""
    model = S3D().eval()
    sizes = {}
    for name in ("maxpool_2a", "maxpool_3a", "maxpool_4a", "maxpool_5a", "mixed_5c"):
        getattr(model, name).register_forward_hook(lambda m, i, o, name=name: sizes.update({name: tuple(o.shape)}))
    with torch.no_grad():
        out = model(torch.rand(1, 3, 30, 224, 224))
    assert out["video_embedding"].shape == (1, 512) and out["mixed_5c"].shape == (1, 1024)
    assert sizes["maxpool_2a"] == (1, 64, 15, 56, 56)
    assert sizes["maxpool_3a"] == (1, 192, 15, 28, 28)
    assert sizes["maxpool_4a"] == (1, 480, 8, 14, 14)  # 15 time steps (odd) -> 8
    assert sizes["maxpool_5a"] == (1, 832, 4, 7, 7)
    assert sizes["mixed_5c"] == (1, 1024, 4, 7, 7)


@pytest.mark.parametrize("shape", [(1, 3, 15, 64, 64), (1, 3, 16, 63, 64), (1, 1, 16, 64, 64), (3, 16, 64, 64)])
def test_bad_input_shape_is_rejected(shape):
    with pytest.raises(ValueError, match="S3D"):
        S3D()(torch.rand(shape))
