"""DDP (vclip.distributed + vclip.pretrain): a 2-process gloo run equals one process on the same data."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

pytestmark = pytest.mark.distributed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(out: Path, global_negatives: bool):
    from vclip.pretrain import PretrainConfig

    return PretrainConfig(
        output=str(out), preset="tiny", videos_per_group=4, clips_per_video=3, retrieval=False, progress=False,
        device="cpu", global_negatives=global_negatives,
    )


def _rank_main(rank: int, world: int, port: int, out: str, global_negatives: bool, store) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from vclip import distributed as vdist
    from vclip.pretrain import Trainer

    info = vdist.init_distributed("cpu")
    try:
        trainer = Trainer(_config(Path(out) / "run", global_negatives), info, data=(store, store.video_ids, []))
        trainer.model.eval()  # no dropout: compare the loss and gradient arithmetic exactly
        batch = trainer.batch_for(0, 0, [4 * rank + i for i in range(4)])
        loss = trainer.forward_backward(batch)
        grads = {k: p.grad.clone() for k, p in trainer.model.named_parameters() if p.grad is not None}
        torch.save({"loss": loss, "grads": grads}, Path(out) / f"rank{rank}.pt")
    finally:
        vdist.cleanup()


@pytest.mark.parametrize("global_negatives", [False, True])
def test_two_processes_equal_one(tmp_path, global_negatives, random_videos):
    from vclip.loss import contrastive_loss
    from vclip.pretrain import Trainer

    store = random_videos(16)
    mp.spawn(_rank_main, args=(2, free_port(), str(tmp_path), global_negatives, store), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]

    trainer = Trainer(_config(tmp_path / "single", global_negatives), data=(store, store.video_ids, []))
    model = trainer.model.eval()
    batches = []
    for r in range(2):  # the clips each rank drew (clip sampling is keyed by the rank)
        trainer.dist.rank = r
        batches.append(trainer.batch_for(0, 0, [4 * r + i for i in range(4)]))
    outs = [model(b.vfeats, b.vmask, b.input_ids, b.attention_mask) for b in batches]
    if global_negatives:  # one loss over all 24 pairs
        loss = contrastive_loss(torch.cat([o.pooled_video for o in outs]), torch.cat([o.pooled_text for o in outs]))
        per_rank = None
    else:  # GPU-local negatives: DDP averages the two groups' gradients
        per_rank = [contrastive_loss(o.pooled_video, o.pooled_text) for o in outs]
        loss = (per_rank[0] + per_rank[1]) / 2
    model.zero_grad()
    loss.backward()
    if per_rank is not None:
        for r in range(2):
            torch.testing.assert_close(ranks[r]["loss"], per_rank[r].detach(), rtol=1e-5, atol=1e-6)
    else:
        torch.testing.assert_close((ranks[0]["loss"] + ranks[1]["loss"]) / 2, loss.detach(), rtol=1e-5, atol=1e-6)
    params = dict(model.named_parameters())
    assert set(ranks[0]["grads"]) == {k for k, p in params.items() if p.grad is not None}
    for name, grad in ranks[0]["grads"].items():
        torch.testing.assert_close(grad, ranks[1]["grads"][name], rtol=0, atol=0)  # DDP: identical on ranks
        torch.testing.assert_close(grad, params[name].grad, rtol=1e-4, atol=1e-6)


def _program_main(rank: int, world: int, port: int, argv: list[str]) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from vclip.pretrain import main

    main(argv)


@pytest.mark.slow
def test_program_under_two_ranks(tmp_path, synthetic_world):
    """``torchrun --nproc-per-node 2 -m vclip.pretrain`` as two spawned ranks: retrieval, DDP, checkpoint."""
    run = tmp_path / "run"
    argv = ["--data", str(synthetic_world / "pretrain"), "--preset", "tiny", "--output", str(run), "--steps", "4",
            "--videos-per-group", "4", "--clips-per-video", "2", "--no-progress", "--global-negatives", "--log-every", "1",
            "--device", "cpu"]
    mp.spawn(_program_main, args=(2, free_port(), argv), nprocs=2, join=True)
    assert (run / "checkpoints" / "LATEST").read_text().strip() == "step_000004"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert sum(r["kind"] == "train" for r in records) == 4
    plan = next(r for r in records if r["kind"] == "epoch_plan")
    assert plan["retrieval"]["num_videos"] > 0
