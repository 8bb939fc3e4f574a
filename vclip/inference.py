"""VideoCLIP on a user's own videos: video files (or frames, or S3D features) and texts in, scores out.

Paper: VideoCLIP (Xu et al., EMNLP 2021), section 3.1 (the two towers compared by a dot product)
and section 4 (zero-shot use: retrieval scores one pooled video against pooled texts; localisation
scores each second's video token against the texts).

Reference: fairseq ``examples/MMPT`` README "Inference" and ``mmpt/models/mmfusion.py``
``MMPTModel.forward`` (lines 31-89), with the S3D extraction of ``scripts/video_feature_extractor``. Differences from ``MMPTModel``, each an option here:

* **L2 normalisation of the S3D output.** The training features were L2-normalised (``extract.py
  --l2_normalize 1``) but ``MMPTModel.forward`` feeds the raw ``video_embedding`` to the model. We
  normalise by default (``InferenceConfig.l2_normalize=True``) so inference sees what training saw;
  ``l2_normalize=False`` reproduces ``MMPTModel``.
* **Batches.** ``MMPTModel`` asserts batch size 1; here any number of videos and texts is scored as an
  (n_videos, n_texts) matrix, ``batch_size`` windows per video-tower forward.
* **Videos longer than 32 s.** ``MMPTModel`` asserts S <= 32, and the evaluation loaders keep the first
  32 s. Default here (``long_videos="windows"``): consecutive 32-s windows, each encoded on its own
  (so per-second scores cover the whole video), and the video's pooled embedding is the
  seconds-weighted mean of its windows' pooled embeddings. ``long_videos="first"`` keeps the first 32 s.
* The video ``[SEP]``, positions, padding to 32 and masks are those of ``vclip.model`` (the reference's
  layout); nothing is created on a fixed device.

The pipeline is three steps, each its own class: :class:`VideoFeatures` (a path, frames or features
-> per-second S3D features), :class:`LongVideoEncoder` (features of any length -> pooled and
per-second embeddings, by 32-s windows) and :class:`VideoCLIPPipeline` (those plus the text tower ->
:class:`VideoTextScores`).

Per-second scores are the video tower's last-layer state at each second (``video_token_states``,
``[CLS]`` attended as in retrieval) dotted with the pooled text: the quantity the reference's
localisation tasks compare.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vclip.features import chunk_features, extract_features, resolve_device
from vclip.model import VideoCLIP
from vclip.progress import progress_bar
from vclip.s3d import S3D, WEIGHTS_HELP, load_s3d_weights
from vclip.tokenizer import MAX_VIDEO_LEN, encode_texts
from vclip.video import FPS, FRAMES_PER_SECOND_CHUNK, SIZE, frames_to_chunks

logger = logging.getLogger(__name__)

LONG_VIDEO_MODES = ("windows", "first")


@dataclass
class InferenceConfig:
    batch_size: int = 8  # 32-s windows per video-tower forward; also texts per text-tower forward is 8x this
    s3d_batch_size: int = 32  # one-second chunks per S3D forward (the extraction script's batch)
    l2_normalize: bool = True  # as the training features; False reproduces MMPTModel, which skips it
    long_videos: str = "windows"  # "windows": 32-s windows, weighted mean; "first": the first 32 s only
    fps: float = FPS  # decoding recipe (reference: 30 fps, 224 px); smaller size only for tests and demos
    size: int = SIZE
    progress: bool = True  # a tqdm bar over videos (decoding + S3D) when there are several

    def __post_init__(self):
        if self.long_videos not in LONG_VIDEO_MODES:
            raise ValueError(f"long_videos must be one of {LONG_VIDEO_MODES}, got {self.long_videos!r}")
        if self.batch_size < 1 or self.s3d_batch_size < 1:
            raise ValueError(f"batch sizes must be >= 1, got batch_size={self.batch_size}, "
                             f"s3d_batch_size={self.s3d_batch_size}")


@dataclass
class VideoTextScores:
    """Scores of every video against every text (raw dot products, as the reference's ``return_score``).

    Attributes:
        video_text: (n_videos, n_texts) pooled video . pooled text.
        per_second: one (S_i, n_texts) tensor per video: each second's video token . pooled text
            (S_i = all seconds with ``long_videos="windows"``, at most 32 with ``"first"``).
        seconds: S_i, the number of one-second features of each video.
        texts: the queries, in column order.
    """

    video_text: torch.Tensor
    per_second: list[torch.Tensor]
    seconds: list[int]
    texts: list[str] = field(default_factory=list)

    def best_text(self) -> list[str]:
        """The highest-scoring text of each video."""
        return [self.texts[i] for i in self.video_text.argmax(dim=1).tolist()]

    def best_second(self) -> torch.Tensor:
        """(n_videos, n_texts) long: for each video and text, the second with the highest score."""
        return torch.stack([scores.argmax(dim=0) for scores in self.per_second])


VideoInput = str | Path | np.ndarray | torch.Tensor


class VideoFeatures:
    """A user's video, in any of its forms, as (S, 512) S3D features: one row per second.

    ``s3d`` may be None when only precomputed features will be given. Reference:
    ``scripts/video_feature_extractor`` (30 fps, 224 px, one-second chunks, the ``video_embedding``
    output), with the L2 normalisation of the training features (``InferenceConfig.l2_normalize``).
    """

    def __init__(self, s3d: S3D | None, config: InferenceConfig, feature_dim: int):
        self.s3d, self.config, self.feature_dim = s3d, config, feature_dim

    def __call__(self, video: VideoInput) -> torch.Tensor:
        """One video -> (S, 512) float32 S3D features, one row per second.

        ``video`` is a file path; frames (T, H, W, 3) already resized and cropped (uint8, or float in
        [0, 1]); frames in ``MMPTModel``'s layout (S, 30, H, W, 3) or (1, S, 30, H, W, 3); or
        precomputed features (S, 512) (used as given: ``vclip.extract`` output is already normalised).
        """
        if isinstance(video, (str, Path)):
            return torch.from_numpy(extract_features(
                self._require_s3d(video), video, self.config.s3d_batch_size, self.config.fps, self.config.size,
                self.config.l2_normalize))
        tensor = torch.as_tensor(video)
        if tensor.dim() == 2:
            width = self.feature_dim
            if tensor.shape[1] != width or tensor.shape[0] < 1:
                raise ValueError(f"features must be (S >= 1, {width}), got shape {tuple(tensor.shape)}")
            return tensor.float()
        if tensor.dim() == 6 and tensor.shape[0] == 1:
            tensor = tensor[0]
        if tensor.dim() == 5:
            if tensor.shape[1] != FRAMES_PER_SECOND_CHUNK:
                raise ValueError(f"(S, 30, H, W, 3) frames expected, got shape {tuple(tensor.shape)}")
            tensor = tensor.reshape(-1, *tensor.shape[2:])
        if tensor.dim() != 4:
            raise ValueError(f"a video is a path, frames (T, H, W, 3), (S, 30, H, W, 3) or features (S, 512); "
                             f"got shape {tuple(tensor.shape)}")
        if tuple(tensor.shape[1:3]) != (self.config.size, self.config.size):
            logger.warning("frames are %dx%d; the recipe feeds S3D %dx%d centre crops (vclip.video.decode_video)",
                           tensor.shape[1], tensor.shape[2], self.config.size, self.config.size)
        chunks = frames_to_chunks(tensor)
        return chunk_features(self._require_s3d("frames"), chunks, self.config.s3d_batch_size,
                              self.config.l2_normalize)

    def _require_s3d(self, what) -> S3D:
        if self.s3d is None:
            raise ValueError(f"cannot turn {what} into features: this pipeline has no S3D. Pass s3d_weights= "
                             f"(or features (S, 512) instead of videos). {WEIGHTS_HELP}")
        return self.s3d


class LongVideoEncoder:
    """The video tower on videos of any length: 32-second windows, encoded in batches, merged per video.

    The reference's model sees at most 32 seconds (``MMPTModel`` asserts it). ``long_videos="windows"``
    encodes consecutive 32-s windows on their own, concatenates their per-second states and pools a
    video as the seconds-weighted mean of its windows' pooled embeddings; ``"first"`` keeps 32 s.
    """

    def __init__(self, model: VideoCLIP, config: InferenceConfig, device: torch.device):
        self.model, self.config, self.device = model, config, device

    def windows(self, features: torch.Tensor) -> list[torch.Tensor]:
        """(S, 512) -> the (s <= 32, 512) windows the video tower sees."""
        if self.config.long_videos == "first" or len(features) <= MAX_VIDEO_LEN:
            return [features[:MAX_VIDEO_LEN]]
        return list(features.split(MAX_VIDEO_LEN))

    @torch.no_grad()
    def encode_windows(self, windows: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Windows (each (s <= 32, 512)) -> pooled (W, H) and per-second states [(s, H)], in batches."""
        pooled, states = [], []
        width = self.model.config.video_feature_dim
        for start in range(0, len(windows), self.config.batch_size):
            batch = windows[start:start + self.config.batch_size]
            longest = max(len(w) for w in batch)
            vfeats = torch.zeros(len(batch), longest, width, device=self.device)
            vmask = torch.zeros(len(batch), longest, dtype=torch.bool, device=self.device)
            for i, window in enumerate(batch):
                vfeats[i, :len(window)] = window.to(self.device)
                vmask[i, :len(window)] = True
            pooled.append(self.model.encode_video(vfeats, vmask))
            tokens = self.model.video_token_states(vfeats, vmask)  # (b, longest, H)
            states += [tokens[i, :len(window)] for i, window in enumerate(batch)]
        return torch.cat(pooled), states

    def __call__(self, features: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Each video's (S_i, 512) features -> pooled embeddings (n_videos, H) and states [(S_i, H)]."""
        windows, owner = [], []
        for index, video in enumerate(features):
            for window in self.windows(video):
                windows.append(window)
                owner.append(index)
        pooled, states = self.encode_windows(windows)
        owner_t = torch.tensor(owner, device=pooled.device)
        lengths = torch.tensor([len(w) for w in windows], dtype=pooled.dtype, device=pooled.device)
        videos_pooled, videos_states = [], []
        for index in range(len(features)):
            rows = (owner_t == index).nonzero().flatten()
            weights = lengths[rows] / lengths[rows].sum()  # seconds-weighted mean over windows
            videos_pooled.append((weights[:, None] * pooled[rows]).sum(0))
            videos_states.append(torch.cat([states[i] for i in rows.tolist()]))
        return torch.stack(videos_pooled), videos_states


class VideoCLIPPipeline:
    """S3D + VideoCLIP for videos the user brings. ``s3d`` may be None when only features are given.

    It composes :class:`VideoFeatures` (a video in any form -> per-second features) and
    :class:`LongVideoEncoder` (features of any length -> pooled and per-second embeddings) with the
    text tower, and scores every video against every text.

    Example::

        pipe = VideoCLIPPipeline.from_pretrained("runs/my_run", s3d_weights="s3d_howto100m.pth")
        scores = pipe.score(["cooking.mp4", "bikes.mp4"], ["a person cracks an egg", "people ride bikes"])
        scores.video_text            # (2, 2)
        scores.per_second[0]         # (seconds of cooking.mp4, 2)
    """

    def __init__(self, model: VideoCLIP, s3d: S3D | None = None, config: InferenceConfig | None = None,
                 device: str | torch.device = "auto"):
        self.config = config or InferenceConfig()
        self.device = resolve_device(device) if isinstance(device, str) else device
        self.model = model.to(self.device).eval()
        self.s3d = s3d.to(self.device).eval() if s3d is not None else None
        self.video_features = VideoFeatures(self.s3d, self.config, self.model.config.video_feature_dim)
        self.video_encoder = LongVideoEncoder(self.model, self.config, self.device)

    @classmethod
    def from_pretrained(cls, checkpoint: str | Path | VideoCLIP, s3d_weights: str | Path | None = None,
                        random_init_s3d: bool = False, device: str = "auto", **config) -> VideoCLIPPipeline:
        """``checkpoint``: anything ``vclip.checkpoint.load_model`` reads (native folder, run directory, the
        reference's ``checkpoint_best.pt``) or a ``VideoCLIP``. ``s3d_weights``: ``s3d_howto100m.pth``;
        without it only precomputed features can be scored, unless ``random_init_s3d`` (demo only:
        meaningless features, a loud warning)."""
        if isinstance(checkpoint, VideoCLIP):
            model = checkpoint
        else:
            from vclip.checkpoint import load_model

            model = load_model(checkpoint)
        if s3d_weights is not None and random_init_s3d:
            raise ValueError(f"give either s3d_weights ({s3d_weights}) or random_init_s3d=True, not both")
        if s3d_weights is not None:
            s3d = load_s3d_weights(s3d_weights)
        elif random_init_s3d:
            logger.warning("RANDOM-INIT S3D: video features and scores are MEANINGLESS. %s", WEIGHTS_HELP)
            s3d = S3D()
        else:
            s3d = None
        return cls(model, s3d, InferenceConfig(**config), device)

    # ------------------------------------------------------------------ videos
    def encode_videos(self, videos: Sequence[VideoInput]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Videos -> pooled embeddings (n_videos, H) and per-second token states [(S_i, H)]."""
        if isinstance(videos, (str, Path)) or not isinstance(videos, Sequence) or len(videos) == 0:
            raise ValueError("videos must be a non-empty list (of paths, frame arrays or feature arrays)")
        bar = progress_bar(videos, desc="videos", unit="video", leave=False,
                           enabled=self.config.progress and len(videos) >= 2)
        return self.video_encoder([self.video_features(video) for video in bar])

    # ------------------------------------------------------------------ texts and scores
    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """Texts -> pooled text embeddings (n_texts, H) (evaluation-style tokenisation, 61-token cap)."""
        if isinstance(texts, str):
            texts = [texts]
        step = 8 * self.config.batch_size
        out = []
        for start in range(0, len(texts), step):
            input_ids, attention_mask = encode_texts(list(texts[start:start + step]))
            out.append(self.model.encode_text(input_ids.to(self.device), attention_mask.to(self.device)))
        if not out:
            raise ValueError("texts must hold at least one string")
        return torch.cat(out)

    def score(self, videos: Sequence[VideoInput], texts: Sequence[str]) -> VideoTextScores:
        """Score every video against every text; see ``VideoTextScores``."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        text = self.encode_texts(texts)  # (M, H)
        pooled, states = self.encode_videos(videos)  # (N, H), [(S_i, H)]
        return VideoTextScores(
            video_text=(pooled @ text.T).cpu(),
            per_second=[(s @ text.T).cpu() for s in states],
            seconds=[len(s) for s in states],
            texts=texts,
        )

