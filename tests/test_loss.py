"""vclip.loss: the reference's MMContraLoss, its options, and the cross-rank all-gather."""

from __future__ import annotations

import math
import os
import socket

import pytest
import torch
import torch.nn.functional as F

from vclip.loss import ContrastiveLoss, all_gather_with_grad, contrastive_loss


def naive_loss(video, text, temperature=1.0):
    """Cross-entropy written as a loop over pairs: -log softmax of the matching pair, both directions."""
    n = video.shape[0]
    total_v2t = total_t2v = 0.0
    for i in range(n):
        scores_v = [float(video[i] @ text[j]) / temperature for j in range(n)]
        scores_t = [float(text[i] @ video[j]) / temperature for j in range(n)]
        total_v2t += -scores_v[i] + math.log(sum(math.exp(s) for s in scores_v))
        total_t2v += -scores_t[i] + math.log(sum(math.exp(s) for s in scores_t))
    return total_v2t / n + total_t2v / n


def test_loss_equals_a_naive_loop_over_pairs():
    generator = torch.Generator().manual_seed(0)
    video, text = torch.randn(6, 16, generator=generator), torch.randn(6, 16, generator=generator)
    video, text = video.double(), text.double()
    assert contrastive_loss(video, text).item() == pytest.approx(naive_loss(video, text), rel=1e-9)
    assert contrastive_loss(video, text, temperature=0.5).item() == pytest.approx(
        naive_loss(video, text, temperature=0.5), rel=1e-9
    )
    unit_v, unit_t = F.normalize(video, dim=-1), F.normalize(text, dim=-1)
    assert contrastive_loss(video, text, normalize=True).item() == pytest.approx(
        naive_loss(unit_v, unit_t), rel=1e-9
    )


def test_loss_is_two_log_b_when_all_logits_are_equal():
    for batch in (1, 4, 512):
        zeros = torch.zeros(batch, 8)
        assert contrastive_loss(zeros, zeros).item() == pytest.approx(2 * math.log(batch), abs=1e-5)
        same = torch.ones(batch, 8)  # every logit equal (= 8)
        assert contrastive_loss(same, same).item() == pytest.approx(2 * math.log(batch), abs=1e-5)


def test_loss_is_not_symmetric_averaged_but_summed():
    video = torch.eye(3) * 10  # perfectly aligned pairs: both directions near 0
    assert contrastive_loss(video, video).item() < 1e-3
    video, text = torch.randn(5, 4), torch.randn(5, 4)
    v2t = F.cross_entropy(video @ text.T, torch.arange(5))
    t2v = F.cross_entropy(text @ video.T, torch.arange(5))
    assert torch.allclose(contrastive_loss(video, text), v2t + t2v)


def test_one_optimiser_step_lowers_the_loss():
    torch.manual_seed(0)
    video_proj, text_proj = torch.nn.Linear(12, 8), torch.nn.Linear(12, 8)
    inputs_v, inputs_t = torch.randn(16, 12), torch.randn(16, 12)
    optimizer = torch.optim.SGD([*video_proj.parameters(), *text_proj.parameters()], lr=0.05)
    criterion = ContrastiveLoss()
    before = criterion(video_proj(inputs_v), text_proj(inputs_t))
    before.backward()
    optimizer.step()
    after = criterion(video_proj(inputs_v), text_proj(inputs_t))
    assert after.item() < before.item()
    assert "temperature=None" in repr(criterion)


def test_gather_without_a_process_group_is_the_local_loss():
    video, text = torch.randn(4, 8), torch.randn(4, 8)
    assert all_gather_with_grad(video) is video
    assert torch.equal(contrastive_loss(video, text, gather=True), contrastive_loss(video, text))


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match=r"\(3, 8\) and \(4, 8\)"):
        contrastive_loss(torch.randn(3, 8), torch.randn(4, 8))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        contrastive_loss(torch.randn(3, 8), torch.randn(3, 8), temperature=0.0)
    with pytest.raises(ValueError, match="B = 0"):
        contrastive_loss(torch.randn(0, 8), torch.randn(0, 8))


# ---------------------------------------------------------------- two processes, gloo

WORLD, LOCAL_BATCH, DIM = 2, 3, 5


def _global_problem():
    generator = torch.Generator().manual_seed(7)
    inputs_v = torch.randn(WORLD * LOCAL_BATCH, DIM, generator=generator)
    inputs_t = torch.randn(WORLD * LOCAL_BATCH, DIM, generator=generator)
    weight = torch.randn(DIM, DIM, generator=generator)
    return inputs_v, inputs_t, weight


def _rank_main(rank: int, port: int, out_dir: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        inputs_v, inputs_t, weight = _global_problem()
        weight.requires_grad_(True)
        local = slice(rank * LOCAL_BATCH, (rank + 1) * LOCAL_BATCH)
        loss = contrastive_loss(inputs_v[local] @ weight, inputs_t[local] @ weight.T, gather=True)
        loss.backward()
        grad = weight.grad.clone()
        dist.all_reduce(grad)  # what DDP does: average the gradients over ranks
        grad /= WORLD
        mean_loss = loss.detach().clone()
        dist.all_reduce(mean_loss)
        mean_loss /= WORLD
        local_only = contrastive_loss(inputs_v[local] @ weight, inputs_t[local] @ weight.T, gather=False)
        torch.save(
            {"grad": grad, "mean_loss": mean_loss, "local_only": local_only.detach()},
            os.path.join(out_dir, f"rank{rank}.pt"),
        )
    finally:
        dist.destroy_process_group()


@pytest.mark.distributed
def test_gathered_loss_and_ddp_gradients_equal_the_global_loss(tmp_path):
    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(_rank_main, args=(port, str(tmp_path)), nprocs=WORLD, join=True)
    inputs_v, inputs_t, weight = _global_problem()
    weight.requires_grad_(True)
    global_loss = contrastive_loss(inputs_v @ weight, inputs_t @ weight.T)
    global_loss.backward()
    results = [torch.load(tmp_path / f"rank{rank}.pt") for rank in range(WORLD)]
    for result in results:
        assert torch.allclose(result["mean_loss"], global_loss.detach(), atol=1e-6)
        assert torch.allclose(result["grad"], weight.grad, atol=1e-6)
    # The faithful default contrasts each rank's pairs alone, which is a different (larger-B-blind) loss.
    local_mean = sum(result["local_only"] for result in results) / WORLD
    assert not torch.allclose(local_mean, global_loss.detach(), atol=1e-3)
