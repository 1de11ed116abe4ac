"""A tiny random-weight StableVideoDiffusionPipeline, built from configs like diffusers' own get_dummy_components().

The image encoder keeps the real SVD's 224x224 input (its patches and hidden size are tiny): for PIL images the
pipeline always resizes the conditioning image to 224x224 before CLIP, whatever height/width are asked for.
"""

import json
from pathlib import Path

IMAGE_ENCODER_SIZE = 224  # what StableVideoDiffusionPipeline resizes PIL conditioning images to for CLIP
IMAGE_EMBED_DIM = 32  # CLIP vision projection_dim == the UNet's cross_attention_dim

# 32x32 pixels -> 4x4 latents (the tiny VAE downsamples by 8, as the real one does) -> 2x2 in the UNet's lower block,
# so height and width must be multiples of 16.
# height and width must always be passed: the pipeline's defaults are 576x1024, not taken from the config.
SVD_CALL = dict(
    height=32,
    width=32,
    num_frames=4,
    num_inference_steps=2,
    min_guidance_scale=1.0,
    max_guidance_scale=2.5,
    fps=7,
    motion_bucket_id=127,
    noise_aug_strength=0.02,
    decode_chunk_size=2,
)


def _tiny_svd_components() -> dict:
    """unet, vae, image_encoder, feature_extractor, scheduler; seeded, so reproducible."""
    import torch
    from diffusers import AutoencoderKLTemporalDecoder, EulerDiscreteScheduler, UNetSpatioTemporalConditionModel
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    unet = UNetSpatioTemporalConditionModel(
        sample_size=4,
        in_channels=8,  # noisy latents + the conditioning image's latents
        out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        block_out_channels=(32, 64),
        layers_per_block=2,
        cross_attention_dim=IMAGE_EMBED_DIM,
        num_attention_heads=(2, 4),  # 16 channels per head at both levels
        addition_time_embed_dim=32,
        projection_class_embeddings_input_dim=3 * 32,  # fps, motion_bucket_id, noise_aug_strength
        num_frames=SVD_CALL["num_frames"],  # the default when a call passes no num_frames
    )
    # The scheduler config of stabilityai/stable-video-diffusion-img2vid(-xt).
    scheduler = EulerDiscreteScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        trained_betas=None,
        prediction_type="v_prediction",
        interpolation_type="linear",
        use_karras_sigmas=True,
        sigma_min=0.002,
        sigma_max=700.0,
        timestep_spacing="leading",
        timestep_type="continuous",
        steps_offset=1,
    )
    torch.manual_seed(0)
    vae = AutoencoderKLTemporalDecoder(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,  # downsamples by 8, like the real SVD VAE
        block_out_channels=(32, 32, 64, 64),
        layers_per_block=1,
        latent_channels=4,
        sample_size=32,
    )
    torch.manual_seed(0)
    image_encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            image_size=IMAGE_ENCODER_SIZE,
            patch_size=14,
            hidden_size=32,
            intermediate_size=37,
            projection_dim=IMAGE_EMBED_DIM,
            num_hidden_layers=2,
            num_attention_heads=4,
        )
    )
    image_encoder.eval()
    # The pipeline calls it with do_resize/do_center_crop off (it resizes to 224 itself): only the mean/std are used.
    feature_extractor = CLIPImageProcessor(
        size={"shortest_edge": IMAGE_ENCODER_SIZE},
        crop_size={"height": IMAGE_ENCODER_SIZE, "width": IMAGE_ENCODER_SIZE},
    )
    return dict(
        unet=unet, vae=vae, image_encoder=image_encoder, feature_extractor=feature_extractor, scheduler=scheduler
    )


def save_tiny_svd(folder: Path) -> Path:
    """A tiny StableVideoDiffusionPipeline at folder, in diffusers layout with safetensors weights; returns folder."""
    from diffusers import StableVideoDiffusionPipeline

    folder = Path(folder)
    StableVideoDiffusionPipeline(**_tiny_svd_components()).save_pretrained(folder, safe_serialization=True)
    # Without torchvision, transformers v5 hands out CLIPImageProcessorPil for CLIPImageProcessor and model_index.json
    # would record that; record CLIPImageProcessor as the hub's SVD repositories do (it loads either way).
    index_file = folder / "model_index.json"
    index = json.loads(index_file.read_text())
    if index.get("feature_extractor", [None, None])[1] == "CLIPImageProcessorPil":
        index["feature_extractor"] = ["transformers", "CLIPImageProcessor"]
        index_file.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return folder
