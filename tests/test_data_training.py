"""Tasks, text corpus, training loop and gradient measurements."""

import math
import re

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


# ------------------------------------------------------------------ tasks: their documented ranges and errors
@pytest.mark.parametrize("seq_len, first_half", [(10, 5), (7, 3)])
def test_adding_problem_markers_reach_every_step_of_their_half(seq_len, first_half):
    """One marker uniform over steps 0 .. seq_len//2 - 1, the other over seq_len//2 .. seq_len - 1."""
    x, _ = data.adding_problem(2000, seq_len, seed=0)
    marked = x[..., 1].nonzero()[:, 1].reshape(2000, 2)  # (N, 2) marked steps, in order
    assert set(marked[:, 0].tolist()) == set(range(first_half))
    assert set(marked[:, 1].tolist()) == set(range(first_half, seq_len))


def test_adding_problem_shortest_sequence_marks_both_steps():
    x, y = data.adding_problem(5, 2, seed=0)
    assert (x[..., 1] == 1).all()  # one step per half: both marked
    torch.testing.assert_close(y, x[..., 0].sum(1))


def test_copy_task_defaults_are_8_symbols_and_a_pattern_of_5():
    x, y = data.copy_task(2, delay=3, seed=0)
    assert x.shape == (2, 13, 10) and y.shape == (2, 13)  # T = 2 * 5 + 3, channels 8 + blank + go
    assert (y[:, -5:] < 8).all() and (y[:, :-5] == 8).all()
    assert (x[:, 8].argmax(-1) == 9).all()  # the go cue after the pattern and the delay


def test_copy_task_without_delay_recalls_right_after_the_cue():
    x, y = data.copy_task(2, delay=0, n_symbols=4, pattern_len=2, seed=0)
    assert x.shape == (2, 4, 6)
    assert torch.equal(y[:, 2:], x[:, :2].argmax(-1)) and (x[:, 2].argmax(-1) == 5).all()


@pytest.mark.parametrize("task", [lambda **kw: data.adding_problem(3, 6, **kw), lambda **kw: data.copy_task(3, 2, **kw),
                                  lambda **kw: data.sine_wave(3, 6, **kw),
                                  lambda **kw: data.char_batches(torch.arange(30), 3, 6, **kw)],
                         ids=["adding_problem", "copy_task", "sine_wave", "char_batches"])
def test_tasks_default_to_seed_0_and_prefer_a_given_generator(task):
    default = task()
    for same in (task(seed=0), task(generator=torch.Generator().manual_seed(0))):
        assert all(torch.equal(a, b) for a, b in zip(default, same))
    given = task(seed=0, generator=torch.Generator().manual_seed(1))
    assert torch.equal(given[0], task(seed=1)[0]) and not torch.equal(given[0], default[0])


def test_sine_wave_noise_is_added_to_the_same_waves():
    clean, _ = data.sine_wave(200, 50, seed=2)
    noisy, target = data.sine_wave(200, 50, seed=2, noise=0.1)
    residual = noisy - clean
    assert abs(residual.mean()) < 0.005 and residual.std() == pytest.approx(0.1, rel=0.05)
    torch.testing.assert_close(noisy[:, 1:], target[:, :-1])  # the noisy wave is also the target


@pytest.mark.parametrize("delay", [-1, 1.5, "3"])
def test_copy_task_refuses_a_bad_delay(delay):
    with pytest.raises(ValueError, match=rf"^copy_task: expected delay to be an int >= 0, got {delay!r}$"):
        data.copy_task(2, delay=delay)


@pytest.mark.parametrize("make, name", [
    (lambda n, t: data.adding_problem(n, t), "adding_problem"),
    (lambda n, t: data.copy_task(n, 2, pattern_len=t), "copy_task"),
    (lambda n, t: data.sine_wave(n, t), "sine_wave"),
    (lambda n, t: data.char_batches(torch.arange(20), n, t), "char_batches"),
])
@pytest.mark.parametrize("size", [0, -2, 2.0, True])
def test_tasks_refuse_sizes_below_one(make, name, size):
    second = "pattern_len" if name == "copy_task" else "seq_len"
    with pytest.raises(ValueError, match=rf"^{name}: expected batch_size to be an int >= 1, got {size!r}$"):
        make(size, 3)
    with pytest.raises(ValueError, match=rf"^{name}: expected {second} to be an int >= 1, got {size!r}$"):
        make(3, size)


def test_sine_wave_frequencies_and_phases_are_in_their_documented_ranges():
    """Each sequence is sin(ω t + φ) with ω uniform in [0.2, 0.6] radians per step and φ uniform in [0, 2π)."""
    x, y = data.sine_wave(4000, 20, seed=0, dtype=torch.float64)
    x = x[..., 0]  # (N, T)
    # x_{t+1} + x_{t-1} = 2 cos(ω) x_t for a sine: ω by least squares, then φ from x_0 and x_1
    cos_w = (x[:, 1:-1] * (x[:, 2:] + x[:, :-2])).sum(1) / (2 * (x[:, 1:-1] ** 2).sum(1))
    omega = torch.arccos(cos_w)
    phase = torch.atan2(x[:, 0], (x[:, 1] - cos_w * x[:, 0]) / torch.sin(omega)) % (2 * math.pi)
    t = torch.arange(21, dtype=torch.float64)
    wave = torch.sin(omega[:, None] * t + phase[:, None])  # (N, T + 1)
    torch.testing.assert_close(x, wave[:, :-1], atol=1e-4, rtol=0)
    torch.testing.assert_close(y[:, -1, 0], wave[:, -1], atol=1e-4, rtol=0)
    assert 0.2 - 1e-3 < omega.min() < 0.21 and 0.59 < omega.max() < 0.6 + 1e-3
    quarters = torch.bincount((phase / (math.pi / 2)).long().clamp(max=3), minlength=4).double() / 4000
    torch.testing.assert_close(quarters, torch.full((4,), 0.25, dtype=torch.float64), atol=0.04, rtol=0)


def test_sine_wave_seed_gives_these_values():
    """The stored notebooks' outputs depend on the seeded data: these are sine_wave(2, 3, seed=0)'s."""
    x, y = data.sine_wave(2, 3, seed=0)
    expected = torch.tensor([[0.5277251, 0.8159802, 0.9763598, 0.9837304],
                             [0.7376425, 0.9727616, 0.9628711, 0.7104619]])
    torch.testing.assert_close(x[..., 0], expected[:, :-1], atol=1e-6, rtol=0)
    torch.testing.assert_close(y[..., 0], expected[:, 1:], atol=1e-6, rtol=0)


@pytest.mark.parametrize("task", [data.adding_problem, data.sine_wave])
def test_tasks_give_the_same_numbers_in_every_dtype(task):
    """The data are drawn in float32 whatever the dtype: float64 holds exactly the float32 numbers."""
    x32, y32 = task(64, 50, seed=1)
    x64, y64 = task(64, 50, seed=1, dtype=torch.float64)
    assert x64.dtype == y64.dtype == torch.float64
    assert torch.equal(x64, x32.double()) and torch.equal(y64, y32.double())


def test_char_batches_need_a_text_longer_than_a_window():
    text = torch.arange(6)
    x, y = data.char_batches(text, 3, 5, seed=0)  # one window fits: every row is the whole text
    assert torch.equal(x, text[:5].expand(3, 5)) and torch.equal(y, text[1:].expand(3, 5))
    for encoded in (torch.arange(5), torch.arange(12).reshape(2, 6)):
        message = f"char_batches: expected a 1-D text longer than seq_len=5, got shape {tuple(encoded.shape)}"
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            data.char_batches(encoded, 3, 5)


# ------------------------------------------------------------------ the training loop and the models
def _linear_problem():
    """A linear model and one fixed batch: the loss falls at every SGD step."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    x, y = torch.randn(16, 3), torch.randn(16, 1)
    return model, (lambda step: (x, y)), torch.optim.SGD(model.parameters(), lr=0.05)


def test_history_final_loss_is_the_mean_of_the_last_steps():
    history = training.History(loss=[4.0, 1.0, 2.0, 3.0])
    assert history.final_loss(2) == 2.5
    assert history.final_loss() == 2.5  # fewer steps than `last`: all of them
    long = training.History(loss=[100.0] + [1.0] * 20)
    assert long.final_loss() == 1.0  # by default the last 20 steps, not 21
    with pytest.raises(ValueError, match="^History.final_loss: expected at least one recorded step, got none$"):
        training.History().final_loss()


def test_fit_zero_steps_records_nothing():
    model, batch, opt = _linear_problem()
    before = [p.detach().clone() for p in model.parameters()]
    hist = training.fit(model, batch, F.mse_loss, 0, optimizer=opt, progress=False)
    assert hist.loss == [] and hist.grad_norm == []
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before)) and not model.training


@pytest.mark.parametrize("steps", [-1, 2.0, "3"])
def test_fit_refuses_a_bad_number_of_steps(steps):
    model, batch, _ = _linear_problem()
    with pytest.raises(ValueError, match=rf"^fit: expected steps to be an int >= 0, got {steps!r}$"):
        training.fit(model, batch, F.mse_loss, steps, progress=False)


def test_fit_refuses_a_model_without_trainable_parameters():
    model = torch.nn.Linear(3, 1).requires_grad_(False)
    with pytest.raises(ValueError, match="^fit: expected a model with trainable parameters, got none$"):
        training.fit(model, lambda s: (torch.zeros(1, 3), torch.zeros(1, 1)), F.mse_loss, 1, progress=False)


def test_fit_continues_a_history():
    model, batch, opt = _linear_problem()
    first = training.fit(model, batch, F.mse_loss, 2, optimizer=opt, progress=False)
    losses = list(first.loss)
    again = training.fit(model, batch, F.mse_loss, 3, optimizer=opt, progress=False, history=first)
    assert again is first and len(again.loss) == len(again.grad_norm) == 5
    assert again.loss[:2] == losses and again.loss[2] < losses[1]  # the model went on from where it was


def test_fit_without_clip_records_the_gradient_norm_unchanged():
    model, batch, _ = _linear_problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # no step: the gradient is the same every time
    hist = training.fit(model, batch, F.mse_loss, 2, optimizer=opt, progress=False)
    model.zero_grad()
    F.mse_loss(model(batch(0)[0]), batch(0)[1]).backward()
    expected = torch.cat([p.grad.flatten() for p in model.parameters()]).norm().item()
    assert hist.grad_norm == pytest.approx([expected, expected], rel=1e-6)


def test_fit_default_optimizer_is_adam_with_lr_1e_2():
    """Adam's first step moves every parameter with a nonzero gradient by lr, whatever the gradient's size."""
    model, batch, _ = _linear_problem()
    before = [p.detach().clone() for p in model.parameters()]
    training.fit(model, batch, F.mse_loss, 1, progress=False)
    moved = torch.cat([(p.detach() - b).abs().flatten() for p, b in zip(model.parameters(), before)])
    torch.testing.assert_close(moved, torch.full_like(moved, 1e-2), rtol=1e-3, atol=0)
    model, batch, _ = _linear_problem()
    training.fit(model, batch, F.mse_loss, 1, lr=0.5, progress=False)
    moved = torch.cat([(p.detach() - b).abs().flatten() for p, b in zip(model.parameters(), before)])
    torch.testing.assert_close(moved, torch.full_like(moved, 0.5), rtol=1e-3, atol=0)


def test_fit_calls_the_loss_with_the_prediction_then_the_target():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    x, labels = torch.randn(8, 4), torch.randint(0, 3, (8,))
    hist = training.fit(model, lambda s: (x, labels), F.cross_entropy, 2, progress=False)  # not symmetric
    assert len(hist.loss) == 2 and hist.loss[1] < hist.loss[0]


def test_fit_shows_the_loss_on_the_progress_bar_every_ten_steps(monkeypatch):
    shown = []

    class RecordingBar(training.tqdm):
        def set_postfix(self, **kwargs):
            shown.append(kwargs)
            super().set_postfix(**kwargs)

    monkeypatch.setattr(training, "tqdm", RecordingBar)
    model, batch, opt = _linear_problem()
    hist = training.fit(model, batch, F.mse_loss, 25, optimizer=opt, progress=True)
    assert shown == [{"loss": f"{hist.loss[step]:.4f}"} for step in (0, 10, 20)]


def test_fit_in_a_notebook_replaces_its_bar_by_the_summary(monkeypatch):
    """In a notebook the bar is a displayed widget; when training ends its output becomes summary_line."""
    import IPython.display
    from tqdm.notebook import tqdm_notebook

    updates = []

    class Handle:
        def update(self, obj):
            updates.append(obj)

    displayed = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, display_id=False: displayed.append(obj) or Handle())
    monkeypatch.setattr(training, "tqdm", tqdm_notebook)
    model, batch, opt = _linear_problem()
    hist = training.fit(model, batch, F.mse_loss, 3, optimizer=opt, desc="linear")
    assert len(displayed) == 1 and len(updates) == 1
    assert repr(updates[0]) == training.summary_line("linear", hist)  # plain text, no quotes
    assert repr(updates[0]).startswith("linear: 3 steps, loss ")


@pytest.mark.parametrize("training_mode", [True, False])
def test_evaluate_is_the_loss_in_eval_mode_without_gradients(training_mode):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Dropout(0.5), torch.nn.Linear(8, 1))
    x, y = torch.randn(16, 3), torch.randn(16, 1)
    model.train(training_mode)
    seen = []
    model.register_forward_hook(lambda module, args, out: seen.append((module.training, out.requires_grad)))
    value = training.evaluate(model, x, y, F.mse_loss)
    assert seen == [(False, False)]  # dropout off, no graph
    assert model.training is training_mode  # the mode it had is given back
    model.eval()
    assert value == F.mse_loss(model(x), y).item()


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("impl", ["course", "torch"])
def test_sequence_regressor_output_shapes_and_layers(cell, impl):
    x = torch.randn(4, 6, 2)
    model = training.SequenceRegressor(cell, 2, 5, impl=impl)
    assert model.rnn.__class__ is training.RECURRENT[cell][0 if impl == "course" else 1]
    assert model.rnn.batch_first and model.rnn.hidden_size == 5 and model.head.in_features == 5
    assert model(x).shape == (4,)  # one output, the last step: (N,)
    assert training.SequenceRegressor(cell, 2, 5, output_size=3, impl=impl)(x).shape == (4, 3)
    assert training.SequenceRegressor(cell, 2, 5, output_size=1, impl=impl, every_step=True)(x).shape == (4, 6, 1)


def test_sequence_regressor_reads_out_the_last_step():
    torch.manual_seed(0)
    model = training.SequenceRegressor("gru", 2, 5, output_size=2)
    x = torch.randn(3, 4, 2)
    out, _ = model.rnn(x)
    torch.testing.assert_close(model(x), model.head(out[:, -1]))
    model.every_step = True
    torch.testing.assert_close(model(x), model.head(out))


@pytest.mark.parametrize("impl", ["course", "torch"])
def test_sequence_regressor_forget_bias_raises_the_forget_gates_of_every_layer(impl):
    H = 4
    torch.manual_seed(0)
    plain = training.SequenceRegressor("lstm", 2, H, num_layers=2, impl=impl)
    torch.manual_seed(0)
    raised = training.SequenceRegressor("lstm", 2, H, num_layers=2, impl=impl, forget_bias=1.5)
    shift = torch.zeros(4 * H)
    shift[H:2 * H] = 1.5  # the forget gate's rows (order i, f, g, o)
    for name, p in plain.state_dict().items():
        expected = p + shift if name.startswith("rnn.bias_ih") else p
        torch.testing.assert_close(raised.state_dict()[name], expected, rtol=0, atol=1e-6, msg=name)


def test_models_refuse_unknown_cells_and_implementations():
    with pytest.raises(ValueError, match="^SequenceRegressor: expected cell 'rnn', 'lstm' or 'gru', got 'transformer'$"):
        training.SequenceRegressor("transformer", 2, 4)
    with pytest.raises(ValueError, match="^SequenceRegressor: expected impl 'course' or 'torch', got 'cudnn'$"):
        training.SequenceRegressor("gru", 2, 4, impl="cudnn")
    with pytest.raises(ValueError, match="^CharLM: expected cell 'rnn', 'lstm' or 'gru', got 'LSTM'$"):
        training.CharLM(10, "LSTM")


def test_char_lm_layers_and_state():
    lm = training.CharLM(11, "gru", embed_size=6, hidden_size=7)
    assert lm.cell == "gru" and type(lm.rnn) is torch.nn.GRU and lm.rnn.num_layers == 1  # torch's layer by default
    assert (lm.embed.num_embeddings, lm.embed.embedding_dim, lm.head.out_features) == (11, 6, 11)
    tokens = torch.randint(0, 11, (2, 5))
    logits, state = lm(tokens, return_state=True)
    assert logits.shape == (2, 5, 11) and state.shape == (1, 2, 7)
    # carrying the state over is the same as reading the whole sequence at once
    first, state = lm(tokens[:, :3], return_state=True)
    torch.testing.assert_close(torch.cat([first, lm(tokens[:, 3:], state)], dim=1), logits)
    course = training.CharLM(11, "lstm", num_layers=2, impl="course")
    assert type(course.rnn) is training.modules.LSTM and course.rnn.num_layers == 2


def test_char_lm_defaults():
    lm = training.CharLM(11)
    assert lm.cell == "lstm" and type(lm.rnn) is torch.nn.LSTM and lm.rnn.batch_first
    assert (lm.embed.embedding_dim, lm.rnn.input_size, lm.rnn.hidden_size, lm.rnn.num_layers) == (32, 32, 128, 1)


@pytest.mark.parametrize("training_mode", [True, False])
def test_char_lm_samples_in_eval_mode_and_gives_the_mode_back(training_mode):
    lm = training.CharLM(9, "gru", hidden_size=8)
    lm.train(training_mode)
    modes = []
    lm.register_forward_pre_hook(lambda module, args: modes.append(module.training))
    lm.sample(torch.tensor([1, 2]), 4, generator=torch.Generator().manual_seed(0))
    assert modes == [False] * 5  # the prompt, then one call per sampled character
    assert lm.training is training_mode


def test_char_lm_sample_prompts():
    lm = training.CharLM(9, "rnn", hidden_size=8)
    lm.train()
    out = lm.sample(torch.tensor([4]), 6, generator=torch.Generator().manual_seed(0))  # one character is enough
    assert out.shape == (6,) and out.dtype == torch.long and lm.training
    for prompt in (torch.tensor([], dtype=torch.long), torch.tensor([[1, 2]])):
        with pytest.raises(ValueError, match=rf"^CharLM.sample: expected a non-empty 1-D prompt, got shape "
                                             rf"{re.escape(str(tuple(prompt.shape)))}$"):
            lm.sample(prompt, 3)


def test_sine_wave_noise_is_the_generators_next_normal_draws_added():
    """x = wave + noise · ε with ε the generator's normal draws after the frequencies and phases."""
    clean, _ = data.sine_wave(4, 6, seed=3)
    noisy, _ = data.sine_wave(4, 6, seed=3, noise=0.1)
    g = torch.Generator().manual_seed(3)
    torch.rand(4, 1, generator=g), torch.rand(4, 1, generator=g)  # the frequencies and phases
    eps = torch.randn(4, 7, generator=g)  # (N, T+1)
    torch.testing.assert_close(noisy - clean, 0.1 * eps[:, :-1, None], rtol=0, atol=1e-6)


def test_clip_grad_norm_leaves_a_gradient_smaller_than_eps_alone():
    grads = [torch.full((3,), 1e-8), torch.full((2, 2), -2e-8)]
    clipped, total = gradients.clip_grad_norm(grads, max_norm=1.0)
    for c, g in zip(clipped, grads):
        assert torch.equal(c, g)
    assert float(total) == pytest.approx(float(torch.cat([g.flatten() for g in grads]).norm()))


def test_gradient_norms_refuses_an_empty_sequence():
    with pytest.raises(ValueError, match="expected seq_len >= 1, got 0"):
        gradients.gradient_norms("rnn", seq_len=0)
