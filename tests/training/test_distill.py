"""Progressive distillation: the target lands where the teacher lands, and a short run trains and exports a student."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from terradream.model.pipeline import TerraPipeline
from terradream.model.scheduler import default_scheduler
from terradream.model.testing import make_tiny_model
from terradream.training.config import TrainConfig
from terradream.training.dataset import TripleDataset
from terradream.training.distill import DistillTrainer, distill_target
from terradream.training.train import condition_from_parent


@pytest.mark.parametrize(("t", "t_end"), [(999, 499), (499, -1)])
def test_one_ddim_step_to_the_target_lands_on_the_teachers_endpoint(t: int, t_end: int) -> None:
    sched = default_scheduler()
    sched.set_timesteps(2)
    gen = torch.Generator().manual_seed(0)
    x_t, x_end = torch.randn(2, 3, 8, 8, generator=gen), torch.randn(2, 3, 8, 8, generator=gen)
    alpha_t = sched.alphas_cumprod[t]
    alpha_end = sched.alphas_cumprod[t_end] if t_end >= 0 else sched.final_alpha_cumprod
    x0 = distill_target(x_t, x_end, alpha_t, alpha_end)
    v = (alpha_t.sqrt() * x_t - x0) / (1 - alpha_t).sqrt()  # the v prediction that means this x0
    landed = sched.step(v, t, x_t, eta=0.0).prev_sample
    assert torch.allclose(landed, x_end, atol=1e-4)


def _synthetic_data(seed: int) -> TripleDataset:
    """Smooth random colour fields with some edges: enough for the trainer's shapes, no real imagery needed."""
    rng = np.random.default_rng(seed)
    data = TripleDataset(32)
    for _ in range(2):
        low = rng.random((8, 8, 3))
        img = np.kron(low, np.ones((8, 8, 1))) * 200 + rng.random((64, 64, 3)) * 40 + 8
        data.add_image(img.astype(np.uint8), 2.0, nodata_black=False)
    return data


def test_a_short_distillation_run_trains_and_exports_a_two_step_student(tmp_path) -> None:
    teacher_dir = make_tiny_model(tmp_path / "teacher", steps=4)
    cfg = TrainConfig(distill_from=str(teacher_dir), out=str(tmp_path / "run"), steps=3, batch=2, crop_px=32, lr=1e-4,
                      warmup_steps=1, context_width=0, inference_steps=2, detail_gain=1.0, chroma_gain=1.0,
                      threads=1, val_every=3, ckpt_every=3, device="cpu")
    trainer = DistillTrainer(cfg, _synthetic_data(0), _synthetic_data(1))
    teacher = trainer.teacher.denoiser.state_dict()
    assert all(torch.equal(teacher[k], v) for k, v in trainer.model.state_dict().items())  # starts as the teacher
    exported = trainer.run(progress=False)
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["step"] == 3 and 0.0 < record["val_loss"] < 1.0
    assert any(not torch.equal(teacher[k], v) for k, v in trainer.model.state_dict().items())  # and learns
    student = TerraPipeline.from_pretrained(exported, device="cpu")
    assert student.num_inference_steps == 2 and student.detail_gain == 1.0
    assert student.margin_px < trainer.teacher.margin_px


@pytest.mark.parametrize("student_steps", [3, 4])
def test_a_student_must_take_a_whole_fraction_of_the_teachers_steps(tmp_path, student_steps: int) -> None:
    teacher_dir = make_tiny_model(tmp_path / "teacher", steps=4)
    cfg = TrainConfig(distill_from=str(teacher_dir), out=str(tmp_path / "run"), inference_steps=student_steps,
                      device="cpu")
    with pytest.raises(ValueError, match="whole fraction"):
        DistillTrainer(cfg, _synthetic_data(0), _synthetic_data(1))


@pytest.mark.parametrize(("teacher_steps", "student_steps", "t", "teacher_path"),
                         [(4, 2, 999, [999, 749]), (4, 2, 499, [499, 249]), (3, 1, 999, [999, 666, 332])])
def test_the_teachers_jump_runs_its_steps_up_to_the_students_next_timestep(
        tmp_path, teacher_steps: int, student_steps: int, t: int, teacher_path: list[int]) -> None:
    teacher_dir = make_tiny_model(tmp_path / "teacher", steps=teacher_steps)
    cfg = TrainConfig(distill_from=str(teacher_dir), out=str(tmp_path / "run"), crop_px=32, context_width=0,
                      inference_steps=student_steps, device="cpu")
    trainer = DistillTrainer(cfg, _synthetic_data(0), _synthetic_data(1))
    child, parent, log2_mpp = trainer.val_batches[0]
    cond = condition_from_parent(parent)
    x = torch.randn(child.shape, generator=torch.Generator().manual_seed(1))
    expected = x
    for tk in teacher_path:
        expected = trainer.teacher.serving_step(expected, tk, cond, parent, log2_mpp)
    assert torch.equal(trainer.teacher_jump(x, t, cond, parent, log2_mpp), expected)
