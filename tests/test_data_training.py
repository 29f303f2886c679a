"""Tasks, text corpus, training loop and gradient measurements."""

import math

import pytest
import torch
import torch.nn.functional as F

from course_utils import data, gradients, training


def test_adding_problem_targets_are_the_marked_sums():
    x, y = data.adding_problem(256, 20, seed=3)
    assert x.shape == (256, 20, 2) and y.shape == (256,)
    markers = x[..., 1]
    assert torch.equal(markers.sum(1), torch.full((256,), 2.0))
    assert (markers[:, :10].sum(1) == 1).all() and (markers[:, 10:].sum(1) == 1).all()  # one per half
    torch.testing.assert_close((x[..., 0] * markers).sum(1), y)
    assert ((x[..., 0] >= 0) & (x[..., 0] < 1)).all()


def test_adding_problem_is_seeded_and_baseline_is_right():
    a, b = data.adding_problem(8, 10, seed=1), data.adding_problem(8, 10, seed=1)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], data.adding_problem(8, 10, seed=2)[0])
    _, y = data.adding_problem(20000, 10, seed=0)
    assert abs(F.mse_loss(torch.ones_like(y), y).item() - data.ADDING_BASELINE_MSE) < 0.01
    with pytest.raises(ValueError, match="adding_problem: expected seq_len >= 2"):
        data.adding_problem(4, 1)


def test_adding_problem_device_and_dtype():
    x, y = data.adding_problem(2, 5, device="cpu", dtype=torch.float64)
    assert x.dtype == y.dtype == torch.float64


def test_copy_task_layout():
    x, y = data.copy_task(3, delay=4, n_symbols=6, pattern_len=3, seed=0)
    assert x.shape == (3, 10, 8) and y.shape == (3, 10)
    pattern = x[:, :3].argmax(-1)
    assert torch.equal(y[:, -3:], pattern)
    assert (y[:, :-3] == 6).all()  # blank until recall
    assert (x[:, 3 + 4].argmax(-1) == 7).all()  # the go cue after the delay


def test_sine_wave_next_value():
    x, y = data.sine_wave(4, 30, seed=0)
    assert x.shape == y.shape == (4, 30, 1)
    torch.testing.assert_close(x[:, 1:], y[:, :-1])


def test_text_corpus_ships_and_round_trips():
    text = data.load_text("sonnets")
    assert len(text) > 4000 and "Shall I compare thee" in text
    assert "Beautiful is better than ugly." in data.load_text("zen")
    vocab = data.CharVocab.from_text(text)
    assert vocab.decode(vocab.encode(text[:200])) == text[:200]
    x, y = data.char_batches(vocab.encode(text), 4, 16, seed=0)
    assert x.shape == y.shape == (4, 16) and torch.equal(x[:, 1:], y[:, :-1])
    with pytest.raises(ValueError, match="load_text: expected one of"):
        data.load_text("wikipedia")
    with pytest.raises(ValueError, match="CharVocab.encode: expected characters from the vocabulary"):
        vocab.encode("€")


def test_fit_learns_and_records_history():
    torch.manual_seed(0)
    model = training.SequenceRegressor("gru", 1, 16, every_step=True)
    gen = torch.Generator().manual_seed(0)
    hist = training.fit(model, lambda s: data.sine_wave(32, 20, generator=gen), F.mse_loss, 150, lr=1e-2,
                        clip=1.0, progress=False)
    assert len(hist.loss) == len(hist.grad_norm) == 150
    assert hist.final_loss() < 0.25 * sum(hist.loss[:10]) / 10
    assert all(math.isfinite(g) and g >= 0 for g in hist.grad_norm)
    assert not model.training


def test_fit_clipping_bounds_the_update():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    x, y = torch.randn(64, 3) * 100, torch.randn(64, 1)
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    hist = training.fit(model, lambda s: (x, y), F.mse_loss, 1, optimizer=opt, clip=0.5, progress=False)
    step = torch.cat([(p.detach() - b).flatten() for p, b in zip(model.parameters(), before)])
    assert hist.grad_norm[0] > 10  # the raw gradient was large ...
    assert step.norm().item() == pytest.approx(0.5, rel=1e-4)  # ... the update was clipped to max_norm * lr


def test_fit_stops_on_nan_with_advice():
    model = torch.nn.Linear(1, 1)
    with pytest.raises(FloatingPointError, match="fit: expected a finite loss, got nan at step 0"):
        training.fit(model, lambda s: (torch.tensor([[float("nan")]]), torch.zeros(1, 1)), F.mse_loss, 3,
                     progress=False)


def test_models_and_parameter_counts():
    counts = {c: training.count_parameters(training.SequenceRegressor(c, 2, 32).rnn) for c in ("rnn", "lstm", "gru")}
    assert counts["gru"] * 4 == counts["lstm"] * 3 and counts["rnn"] * 4 == counts["lstm"]
    lm = training.CharLM(20, "gru", hidden_size=16)
    out = lm.sample(torch.tensor([1, 2, 3]), 25, generator=torch.Generator().manual_seed(0))
    assert out.shape == (25,) and int(out.max()) < 20
    course = training.SequenceRegressor("lstm", 2, 8, impl="course", forget_bias=1.0)
    torch_impl = training.SequenceRegressor("lstm", 2, 8, impl="torch")
    torch_impl.load_state_dict(course.state_dict())
    x = torch.randn(3, 5, 2)
    torch.testing.assert_close(course(x), torch_impl(x))
    assert (course.rnn.bias_ih_l0[8:16] > 0.5).all()  # forget-gate bias raised


def test_clip_grad_norm_matches_torch():
    gen = torch.Generator().manual_seed(0)
    grads = [torch.randn(3, 4, generator=gen) * 10, torch.randn(5, generator=gen)]
    clipped, total = gradients.clip_grad_norm(grads, 1.0)
    params = [torch.nn.Parameter(torch.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    ref_total = torch.nn.utils.clip_grad_norm_(params, 1.0)
    torch.testing.assert_close(total, ref_total)
    for c, p in zip(clipped, params):
        torch.testing.assert_close(c, p.grad)
    small, _ = gradients.clip_grad_norm([torch.ones(2) * 0.1], 1.0)
    torch.testing.assert_close(small[0], torch.ones(2) * 0.1)  # never scaled up


def test_gradient_norms_vanish_and_explode():
    vanish = gradients.gradient_norms("rnn", 50, hidden_size=32)
    assert vanish.shape == (50,)
    assert vanish[0] / vanish[-1] < 1e-6
    explode = gradients.gradient_norms("rnn", 50, hidden_size=32, weight_scale=3.0)
    assert explode[0] / explode[-1] > 10
    lstm = gradients.gradient_norms("lstm", 50, hidden_size=32, forget_bias=2.0, wrt="state")
    assert lstm[0] / lstm[-1] > 1e-3
    with pytest.raises(ValueError, match="gradient_norms: expected wrt 'input' or 'state'"):
        gradients.gradient_norms("rnn", 5, wrt="weights")


def test_summary_line_says_what_training_reached():
    from course_utils.training import History, summary_line
    history = History()
    assert summary_line("LSTM", history) == "LSTM: 0 steps"
    history.loss += [0.51234, 0.3, 0.0312]
    assert summary_line("LSTM", history) == "LSTM: 3 steps, loss 0.5123 -> 0.0312"


def test_stored_solutions_show_no_progress_bar_stuck_at_zero():
    """In a notebook, fit's bar gives way to its summary line: a stored solution never shows "0%|" (issue 16)."""
    import json
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent / "solutions"
    stuck = []
    for path in sorted(root.glob("*.ipynb")):
        for k, cell in enumerate(json.loads(path.read_text())["cells"]):
            for out in cell.get("outputs", []):
                text = out.get("text", "") if out.get("output_type") == "stream" else \
                    out.get("data", {}).get("text/plain", "")
                text = "".join(text) if isinstance(text, list) else text
                if "0%|" in text and "100%|" not in text:
                    stuck.append(f"{path.name} cell {k}")
    assert stuck == []
