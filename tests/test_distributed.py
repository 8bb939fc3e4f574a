"""DDP (vclip.distributed + vclip.pretrain, vclip.finetune): a 2-process gloo run equals one process on the
same data; both programs run under two ranks."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
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
    from vclip.config import PretrainConfig

    return PretrainConfig(
        output=str(out), preset="tiny", videos_per_group=4, clips_per_video=3, retrieval=False, progress=False,
        device="cpu", global_negatives=global_negatives,
    )


def _rank_main(rank: int, world: int, port: int, out: str, global_negatives: bool, store) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from vclip import distributed as vdist
    from vclip.training.trainer import Trainer

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
    from vclip.training.trainer import Trainer

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
    argv = ["--data", str(synthetic_world / "pretrain"), "--model.preset", "tiny", "--output", str(run), "--steps", "4",
            "--sampling.videos-per-group", "4", "--sampling.clips-per-video", "2", "--no-progress",
            "--optimisation.global-negatives", "--run.log-every", "1", "--run.device", "cpu"]
    mp.spawn(_program_main, args=(2, free_port(), argv), nprocs=2, join=True)
    assert (run / "checkpoints" / "LATEST").read_text().strip() == "step_000004"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert sum(r["kind"] == "train" for r in records) == 4
    plan = next(r for r in records if r["kind"] == "epoch_plan")
    assert plan["retrieval"]["num_videos"] > 0


def _torchrun(argv: list[str], timeout: float) -> tuple[int, str]:
    """``torchrun --standalone --nproc-per-node 2 ARGV``: (exit code, stdout and stderr).

    A run past ``timeout`` (a rank left waiting at a collective) fails the test instead of blocking it:
    the launcher gets SIGTERM, which it passes on to its ranks (each in its own session), then SIGKILL.
    """
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", *argv]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(command, cwd=Path(__file__).resolve().parents[1], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        pytest.fail(f"torchrun did not finish within {timeout} s (a hang?); its output ends:\n{out[-4000:]}")
    return proc.returncode, out


@pytest.mark.slow
def test_finetune_program_under_two_ranks(tmp_path, synthetic_world):
    """``torchrun --nproc-per-node 2 -m vclip.finetune``: the ranks train, select and finish together."""
    from vclip.checkpoint import load_model
    from vclip.model import VideoCLIP
    from vclip.training.finetuned import load_finetuned

    torch.manual_seed(0)
    init = tmp_path / "init"
    VideoCLIP.from_preset("tiny").save_pretrained(init)
    run = tmp_path / "run"
    code, out = _torchrun(["-m", "vclip.finetune", "--task", "youcook2", "--init", str(init), "--data",
                           str(synthetic_world), "--output", str(run), "--epochs", "2", "--no-progress",
                           "--device", "cpu"], timeout=240)
    assert code == 0 and "Traceback" not in out, out[-4000:]
    assert out.count("selected epoch:") == 1  # rank 0 reports

    summary = json.loads((run / "finetune.json").read_text())
    assert summary["world_size"] == 2 and len(summary["epochs"]) == 2 and summary["test"]["metrics"]
    per_epoch = summary["updates"] // 2
    assert per_epoch >= 1 and summary["updates"] == 2 * per_epoch
    # the ranks agreed: one record per epoch (rank 0 writes), after the same number of updates each epoch
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert [(r["epoch"], r["step"]) for r in epochs] == [(1, per_epoch), (2, 2 * per_epoch)]
    assert all(math.isfinite(r["train_loss"]) and math.isfinite(r["val_loss"]) for r in epochs)
    steps = [r["step"] for r in records if r["kind"] == "train"]
    assert steps == sorted(set(steps)) and steps[-1] == summary["updates"]

    # the selected checkpoint: named by LATEST and BEST, the only one kept, loadable, and trained
    name = f"step_{per_epoch * summary['selected_epoch']:06d}"  # the loop's checkpoint of the selected epoch
    assert summary["checkpoint"] == f"checkpoints/{name}"
    assert (run / "checkpoints" / "BEST").read_text() == f"{name}\n"
    latest = (run / "checkpoints" / "LATEST").read_text().strip()
    assert (run / "checkpoints" / latest / "model.safetensors").is_file() and name in os.listdir(run / "checkpoints")
    assert not (run / ".lock").exists()
    model, head, loaded = load_finetuned(run)
    assert head is None and loaded["selected_epoch"] == summary["selected_epoch"]
    tuned, before = load_model(run / "checkpoints" / name).state_dict(), load_model(init).state_dict()
    assert tuned.keys() == before.keys() == model.state_dict().keys()
    assert any(not torch.equal(tuned[k], before[k]) for k in tuned)
