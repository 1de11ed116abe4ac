"""Tiny real models for tests, built from configs (nothing downloaded)."""


def save_tiny_model(folder):
    """A real KinemoDiT with a tiny random config, saved in the bundled model's layout at folder."""
    import torch

    from engine.kinemo.files import save_model
    from engine.kinemo.model import KinemoConfig, KinemoDiT

    torch.manual_seed(0)
    model = KinemoDiT(KinemoConfig(dim=16, depth=1, heads=2, text_dim=16, text_depth=1))
    for p in model.parameters():  # zero-initialised output layers would make every clip flat
        torch.nn.init.normal_(p, std=0.05)
    save_model(model, folder)
    return folder


def save_tiny_upscaler(folder, factor: int = 2):
    """A real KinemoUpscaler with a tiny random config (its head is not zero, so it draws more than bilinear)."""
    import torch

    from engine.kinemo.upscaler import KinemoUpscaler, UpscalerConfig, save_upscaler

    torch.manual_seed(0)
    model = KinemoUpscaler(UpscalerConfig(factor=factor, channels=4))
    torch.nn.init.normal_(model.head.weight, std=0.05)
    save_upscaler(model, folder)
    return folder
