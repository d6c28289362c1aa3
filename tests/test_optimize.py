import dataclasses

import pytest
import torch
from torch import nn

from pare_demo.models import PARE, default_config
from pare_demo.optimize import fold_batchnorm, optimize_for_inference, torch_threads

OUTPUTS = ("pose", "betas", "cam", "part_logits", "part_attention")


def with_random_norms(model: nn.Module) -> nn.Module:
    """Batch norms with non-trivial statistics and affine terms, so folding them matters."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                shape = m.running_mean.shape
                m.running_mean.copy_(torch.rand(shape, generator=generator) - 0.5)
                m.running_var.copy_(torch.rand(shape, generator=generator) + 0.5)
                m.weight.copy_(torch.rand(shape, generator=generator) + 0.5)
                m.bias.copy_(torch.rand(shape, generator=generator) * 0.4 - 0.2)
    return model.eval()


def assert_close(reference, result, tolerance=1e-3):
    """Every output within `tolerance` of the reference's largest magnitude."""
    for name in OUTPUTS:
        x, y = getattr(reference, name), getattr(result, name)
        assert x.shape == y.shape, name
        assert (x - y).abs().max() <= tolerance * max(1.0, x.abs().max()), name


# hrnet_w32 is the slow one: one small forward each way.
@pytest.mark.parametrize("backbone, size, batch",
                         [("mobilenetv3", 160, 2), ("resnet50", 96, 2),
                          pytest.param("hrnet_w32", 64, 1, marks=pytest.mark.slow)])
def test_optimized_network_equals_eager(backbone, size, batch):
    torch.manual_seed(0)
    model = with_random_norms(PARE(dataclasses.replace(default_config(backbone), input_size=size)))
    norms = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    with torch_threads(1):
        fast = optimize_for_inference(model, "cpu")
    # Every norm in these networks follows a convolution, so none is left; the original is untouched.
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == norms
    images = torch.randn(batch, 3, size, size)
    with torch.inference_mode(), torch_threads(1):  # one thread: fast even when the cores are busy
        assert_close(model(images), fast(images))


def test_folding_keeps_activations_and_refuses_what_it_cannot_fold():
    torch.manual_seed(0)
    conv_bn_relu = with_random_norms(nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU()))
    # A norm after an in-place activation is not a conv's output: it must stay.
    relu_first = with_random_norms(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(True), nn.BatchNorm2d(8)))
    transposed = with_random_norms(nn.Sequential(nn.ConvTranspose2d(3, 8, 4, stride=2, padding=1, bias=False),
                                                 nn.BatchNorm2d(8)))
    x = torch.randn(2, 3, 12, 12)
    for model, folded in ((conv_bn_relu, 1), (relu_first, 0), (transposed, 1)):
        with torch.no_grad():
            expected = model(x)
            assert fold_batchnorm(model, x) == folded
            assert torch.allclose(model(x), expected, atol=1e-5)
    assert isinstance(relu_first[2], nn.BatchNorm2d) and isinstance(conv_bn_relu[1], nn.Identity)
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(nn.Sequential(nn.Conv2d(3, 8, 1), nn.BatchNorm2d(8)).train(), x)


def test_timm_norm_with_activation_keeps_its_activation():
    from timm.layers import BatchNormAct2d

    torch.manual_seed(0)
    model = with_random_norms(nn.Sequential(nn.Conv2d(3, 8, 3), BatchNormAct2d(8, act_layer=nn.Hardswish)))
    x = torch.randn(1, 3, 10, 10)
    with torch.no_grad():
        expected = model(x)
        assert fold_batchnorm(model, x) == 1
        assert isinstance(model[1], nn.Sequential) and isinstance(model[1][0], nn.Hardswish)
        assert torch.allclose(model(x), expected, atol=1e-5)


def test_torch_threads_are_restored():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError), torch_threads(1):
        assert torch.get_num_threads() == 1
        raise RuntimeError
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before


def test_blazepose_pare_folds_and_runs_at_other_sizes():
    """The BlazePose trunk resizes by its graph's ratios, so the optimiser's small probe and
    a smaller crop run; folding the head's norms changes nothing."""
    torch.manual_seed(0)
    model = with_random_norms(PARE(dataclasses.replace(default_config("blazepose"), input_size=128)))
    with torch_threads(1):
        fast = optimize_for_inference(model, "cpu")
    images = torch.rand(1, 3, 128, 128)
    with torch.inference_mode(), torch_threads(1):
        reference = model(images)
        assert_close(reference, fast(images))
    assert reference.part_attention.shape == (1, 24, 16, 16)


@pytest.mark.slow  # an ONNX export: several seconds
def test_onnx_export_leaves_the_network_in_eval_mode(tmp_path):
    """The exporter restores its wrapper's train/eval mode onto the whole tree: exporting
    once left the caller's network training, its batch norms then using batch statistics."""
    from pare_demo.export_onnx import OnnxNetwork, export

    torch.manual_seed(0)
    model = with_random_norms(PARE(dataclasses.replace(default_config("mobilenetv3"), input_size=96)))
    images = torch.randn(2, 3, 96, 96)
    with torch.inference_mode():
        before = model(images)
    path = export(model, tmp_path / "net.onnx")
    assert not any(m.training for m in model.modules())
    with torch.inference_mode():
        after = model(images)
    assert_close(before, after, tolerance=1e-6)
    assert_close(before, OnnxNetwork(path)(images))
