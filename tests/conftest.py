import os

import pytest
import torch

# Keep every cache the code writes inside the test session.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    os.environ["PARE_CACHE_DIR"] = str(tmp_path_factory.mktemp("pare_cache"))
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def small_checkpoint(tmp_path_factory):
    """A seeded, untrained fast-backbone PARE checkpoint: real code paths, meaningless weights."""
    from pare_demo.checkpoints import save_checkpoint
    from pare_demo.models import PARE, default_config

    torch.manual_seed(0)
    model = PARE(default_config("mobilenetv3"))
    # A camera scale near 1 so the body lands in front of the camera.
    with torch.no_grad():
        model.head.cam_regressor.weight.mul_(0.01)
        model.head.cam_regressor.bias.copy_(torch.tensor([0.9, 0.0, 0.0]))
    path = tmp_path_factory.mktemp("ckpt") / "small.pt"
    return save_checkpoint(path, model.config.to_dict(), model.state_dict(), {"note": "untrained"})


@pytest.fixture(scope="session")
def skeleton_checkpoint(tmp_path_factory):
    """Like small_checkpoint, with the skeleton MLP switched on and given random weights,
    so its correction to the pose is not zero."""
    from pare_demo.checkpoints import save_checkpoint
    from pare_demo.models import PARE, default_config

    torch.manual_seed(0)
    model = PARE(default_config("mobilenetv3", skeleton_hidden=16))
    with torch.no_grad():
        model.head.cam_regressor.weight.mul_(0.01)
        model.head.cam_regressor.bias.copy_(torch.tensor([0.9, 0.0, 0.0]))
        model.head.skeleton_mlp[-1].weight.normal_(0, 0.1)
    path = tmp_path_factory.mktemp("ckpt") / "skeleton.pt"
    return save_checkpoint(path, model.config.to_dict(), model.state_dict(), {"note": "untrained"})


@pytest.fixture(scope="session")
def renderer():
    """One headless GL renderer for the whole session, as the app keeps one."""
    from pare_demo.render import Renderer

    r = Renderer()
    yield r
    r.close()
