"""Demo: the Omniglot game, you against MAML on one-shot tasks of unseen alphabets (chapter 08).

A round is one N-way 1-shot task from the three held-out alphabets
(`mamlbook.protocol.held_out_tasks`, the chapter's test protocol): N characters, one
drawing each (the support set), and one new drawing of one of them (the question).
The reader picks the character the new drawing belongs to; then the page shows the
right answer, MAML's answer and MAML's confidence (its softmax probability), and keeps
a running score of reader against network. Rounds are 5-way or 20-way.

MAML's answer comes from the shipped checkpoint `RECIPE`, adapted exactly as for
chapter 08's table (`mamlbook.omniglot_results.checkpoint_logits`: three SGD steps on
the support set; for 20-way rounds the 5-way head is widened and takes ten steps). As
in that table, the network sees the task's N query drawings (one per character)
together, because its batch normalisation uses the statistics of the batch; the
question is one of them, drawn at random.

Static version: the rounds' images (28 × 28, as the network sees them, 4 bits per
pixel, base64) and MAML's probabilities, precomputed here; the page only draws and
keeps score. Live version: new tasks drawn on demand, MAML adapting in the kernel.
"""
from __future__ import annotations

import functools

import numpy as np
from matplotlib.figure import Figure
import torch
from torch import Tensor

from .. import checks, protocol
from ..tasks import TaskBatch
from . import _html, _live

RECIPE = "omniglot_maml_1shot_anneal"  # the chapter's best 1-shot network
WAYS = (5, 20)
DEFAULTS = {"ways": 5}
ROUNDS = {5: 10, 20: 5}  # rounds per mode in the static version
SEED = 8  # the game's tasks: seed SEED of the held-out protocol (the table uses protocol.EVAL_SEED)
MAX_BYTES = 112_000  # 165 images of 28 × 28 at 4 bits: 86 KB of base64; the script about 24 KB


def _check_ways(ways: int) -> int:
    return checks.one_of("ways", ways, set(WAYS))


def game_tasks(ways: int, rounds: int, seed: int = SEED) -> tuple[TaskBatch, Tensor]:
    """``rounds`` held-out ``ways``-way 1-shot tasks and the question of each round.

    Returns the tasks (support and query ``(rounds, ways, 1, 28, 28)``, one query
    drawing per character) and ``question (rounds,)``, the index of the query drawing
    the reader is asked about (its label is ``tasks.y_query[r, question[r]]``).
    """
    _check_ways(ways)
    checks.int_in_range("rounds", rounds, 1, 1000)
    checks.int_in_range("seed", seed, 0)
    tasks = protocol.held_out_tasks(1, num_tasks=rounds, ways=ways, seed=seed)
    question = torch.randint(ways, (rounds,), generator=torch.Generator().manual_seed(seed))
    return tasks, question


def maml_probabilities(tasks: TaskBatch, recipe: str = RECIPE) -> Tensor:
    """MAML's class probabilities ``(T, Q, ways)`` for every query drawing, after adapting
    shipped checkpoint ``recipe`` on each support set as chapter 08's table does."""
    from ..omniglot_results import checkpoint_logits

    return checkpoint_logits(recipe, tasks).softmax(-1)


@functools.lru_cache(maxsize=4)
def figure_data(ways: int = DEFAULTS["ways"], rounds: int | None = None, seed: int = SEED) -> dict:
    """The rounds of the game: what the page shows and MAML's answers.

    Returns ``support (R, ways, 28, 28)`` and ``question_image (R, 28, 28)`` (floats in
    [0, 1], ink bright), ``answer (R,)`` (the right support position),
    ``maml_probs (R, ways)``, ``maml_choice (R,)`` and ``maml_correct (R,)`` (bool).
    ``rounds`` defaults to ``ROUNDS[ways]``.
    """
    rounds = ROUNDS[_check_ways(ways)] if rounds is None else rounds
    tasks, question = game_tasks(ways, rounds, seed)
    probs = maml_probabilities(tasks)
    r = torch.arange(rounds)
    asked = probs[r, question]  # (R, ways)
    answer = tasks.y_query[r, question]
    # support labels are 0..ways-1 in position order, so a label is a position
    assert torch.equal(tasks.y_support, torch.arange(ways).expand(rounds, ways))
    return {"support": tasks.x_support[:, :, 0], "question_image": tasks.x_query[r, question, 0],
            "answer": answer, "maml_probs": asked, "maml_choice": asked.argmax(-1),
            "maml_correct": asked.argmax(-1) == answer}


def score(choices, answers, maml_choices) -> dict:
    """The running score: ``{"played", "you", "maml"}`` (rounds played, rounds right) for
    the reader's ``choices`` against the ``answers``, beside MAML's."""
    choices, answers, maml_choices = (torch.as_tensor(v).view(-1) for v in (choices, answers, maml_choices))
    if not choices.shape == answers.shape == maml_choices.shape:
        raise ValueError(f"choices, answers and maml_choices must have one entry per round, got "
                         f"{choices.numel()}, {answers.numel()} and {maml_choices.numel()}")
    return {"played": int(choices.numel()), "you": int((choices == answers).sum()),
            "maml": int((maml_choices == answers).sum())}


def quantise(images: Tensor) -> str:
    """Images in [0, 1] at 4 bits per pixel (16 grey levels), two pixels per byte, base64."""
    levels = (images.clamp(0, 1) * 15).round().to(torch.uint8).flatten().numpy()
    if levels.size % 2:
        levels = np.append(levels, 0)
    return _html.b64_uint8(levels[0::2] * 16 + levels[1::2])


def dequantise(b64: str, count: int) -> Tensor:
    """The inverse of `quantise` (what the page decodes): ``count`` values in [0, 1]."""
    import base64

    packed = np.frombuffer(base64.b64decode(b64), dtype=np.uint8)
    levels = np.stack([packed // 16, packed % 16], 1).ravel()[:count]
    return torch.from_numpy(levels.astype(np.float32) / 15)


# ------------------------------------------------------------------ live (Jupyter)


def _round_figure(support: Tensor, question_image: Tensor, reveal: dict | None):
    ways = support.shape[0]
    cols = min(ways, 10)
    fig = Figure(figsize=(_live.BOOK_WIDTH, 1.3 + 0.75 * (ways // cols)), constrained_layout=True)
    grid = fig.add_gridspec(1 + ways // cols, cols)
    ax = fig.add_subplot(grid[0, :])
    ax.imshow((1 - question_image).numpy(), cmap="gray", vmin=0, vmax=1)
    ax.set_title("which character is this?", fontsize=9)
    ax.set_axis_off()
    for i in range(ways):
        a = fig.add_subplot(grid[1 + i // cols, i % cols])
        a.imshow((1 - support[i]).numpy(), cmap="gray", vmin=0, vmax=1)
        a.set_xticks([])
        a.set_yticks([])
        colour = "0.7"
        if reveal is not None:
            colour = ("tab:green" if i == reveal["answer"] else "tab:red" if i == reveal["choice"] else
                      "tab:blue" if i == reveal["maml_choice"] else "0.7")
        for spine in a.spines.values():
            spine.set_color(colour)
            spine.set_linewidth(3 if colour != "0.7" else 1)
        a.set_xlabel(str(i + 1), fontsize=8)
    return fig


def live(**initial):
    """New held-out tasks on demand: pick a character with the numbered buttons (1..N);
    MAML adapts in the kernel and answers; ``next task`` draws another. The box has
    ``.image``, ``.readout``, ``.choose(i)`` (support position ``i``, from 0),
    ``.next_task()`` and ``.ways`` (for tests)."""
    v = _html.controls_from(DEFAULTS, initial)
    _check_ways(v["ways"])
    w = _live.widgets()
    image = w.Image(format="png", layout=w.Layout(width=f"{_live.BOOK_WIDTH * _live.CSS_DPI:.0f}px",
                                                  max_width="100%"))
    readout = w.HTML()
    ways_toggle = w.ToggleButtons(options=[(f"{n}-way", n) for n in WAYS], value=v["ways"])
    # the numbered buttons in the figure's columns (up to 10 a row), under their characters
    choices = w.GridBox(layout=w.Layout(width=image.layout.width, max_width="100%"))
    state = {"draws": 0, "tally": {n: {"played": 0, "you": 0, "maml": 0} for n in WAYS}}

    def new_task(_=None):
        ways = ways_toggle.value
        state["draws"] += 1
        # a different seed per draw, far from the static version's
        tasks, question = game_tasks(ways, 1, seed=10_000 + 97 * state["draws"])
        q = int(question[0])
        state.update(ways=ways, support=tasks.x_support[0, :, 0], question_image=tasks.x_query[0, q, 0],
                     answer=int(tasks.y_query[0, q]), probs=maml_probabilities(tasks)[0, q], done=False)
        image.value = _live.png(_round_figure(state["support"], state["question_image"], None))
        choices.layout.grid_template_columns = f"repeat({min(ways, 10)}, 1fr)"
        buttons = [w.Button(description=str(i + 1), layout=w.Layout(width="auto")) for i in range(ways)]
        for i, b in enumerate(buttons):
            b.on_click(lambda _b, i=i: choose(i))
        choices.children = buttons
        readout.value = f"{_tally_text(state['tally'][ways], ways)}; pick the character"

    def choose(i: int):
        checks.int_in_range("choice", i, 0, state["ways"] - 1)
        if state["done"]:
            return
        maml_choice = int(state["probs"].argmax())
        tally = state["tally"][state["ways"]]
        tally["played"] += 1
        tally["you"] += int(i == state["answer"])
        tally["maml"] += int(maml_choice == state["answer"])
        state["done"] = True
        reveal = {"answer": state["answer"], "choice": i, "maml_choice": maml_choice}
        image.value = _live.png(_round_figure(state["support"], state["question_image"], reveal))
        readout.value = (f"you: {i + 1} ({'right' if i == state['answer'] else 'wrong'}); "
                         f"answer {state['answer'] + 1}; MAML: {maml_choice + 1} with probability {float(state['probs'].max()):.2f} "
                         f"({'right' if maml_choice == state['answer'] else 'wrong'}); "
                         f"{_tally_text(tally, state['ways'])}")

    next_button = w.Button(description="next task")
    next_button.on_click(new_task)
    ways_toggle.observe(new_task, names="value")
    new_task()
    box = w.VBox([w.HBox([ways_toggle, next_button]), image, choices, readout])
    box.image, box.readout, box.choose, box.next_task = image, readout, choose, new_task
    box.ways = ways_toggle
    box.state = state
    return box


def _tally_text(tally: dict, ways: int) -> str:
    return f"{ways}-way score: you {tally['you']}/{tally['played']}, MAML {tally['maml']}/{tally['played']}"


# ------------------------------------------------------------ static (rendered book)

JS = r"""
// The game is 700 pixels wide; where the page gives it less than 0.8 of that (a phone,
// MB.isNarrow), it draws itself 350 wide with the candidates wrapped into rows, so that
// the characters keep their size instead of shrinking with the canvas (and nothing
// scrolls sideways). Its height depends on the mode: it sizes its canvas itself.
const geometry = () => {  // canvas size and candidate grid for this width and mode
  const N = mode.ways, narrow = MB.isNarrow(root, 700), W = narrow ? 350 : 700;
  const cols = narrow ? (N > 5 ? 5 : 3) : Math.min(N, 10), size = N > 5 ? (narrow ? 56 : 58) : 84;
  const gap = N > 5 ? 10 : (narrow ? 20 : 24), rows = Math.ceil(N / cols);
  // as tall as the candidates need: a fixed 320 left a blank band under 5-way's single row
  return {narrow, W, H: 150 + rows * (size + 26) + (narrow ? 0 : 10), cols, size, gap};
};
const modes = {};
for (const m of DATA.modes) {
  const px = MB.bytes(m.images), n = m.rounds * (m.ways + 1) * 784, vals = new Float32Array(n);
  for (let i = 0; i < n; i++) vals[i] = (i % 2 ? px[i >> 1] & 15 : px[i >> 1] >> 4) / 15;
  modes[m.ways] = {...m, vals, round: 0, played: 0, you: 0, maml: 0, choice: null, cursor: 0};
}
let mode = modes[DATA.ways];
const img = (k, size) => {  // image k of the mode as a canvas (ink dark on white)
  const c = document.createElement('canvas'); c.width = c.height = 28;
  const ctx = c.getContext('2d'), d = ctx.createImageData(28, 28);
  for (let i = 0; i < 784; i++) { const g = Math.round(255 * (1 - mode.vals[k * 784 + i]));
    d.data[4 * i] = d.data[4 * i + 1] = d.data[4 * i + 2] = g; d.data[4 * i + 3] = 255; }
  ctx.putImageData(d, 0, 0); return c;
};
const layout = () => {  // candidate boxes [x, y, w, h] in canvas pixels
  const {W, cols, size, gap} = geometry(), x0 = (W - cols * size - (cols - 1) * gap) / 2;
  return Array.from({length: mode.ways}, (_, i) => [x0 + (i % cols) * (size + gap), 150 + Math.floor(i / cols) * (size + 26), size, size]);
};
const box = (ctx, [x, y, w, h], color, width) => { ctx.strokeStyle = color; ctx.lineWidth = width; ctx.strokeRect(x - width / 2, y - width / 2, w + width, h + width); };
let how;  // MB.say's mode for this redraw (drawn(...)); undefined: said once the keys stop
let first = null;  // {digit, timer}: a digit typed, waiting for a second one (20-way)
const drawn = (mode) => { how = mode; draw(); how = undefined; };
function draw() {
  const g = geometry();
  MB.resize(canvas, g.W, g.H);
  const ctx = MB.setup(canvas), r = mode.round, N = mode.ways, base = r * (N + 1), rects = layout();
  ctx.imageSmoothingEnabled = true;
  const probs = mode.probs.slice(r * N, r * N + N), answer = mode.answer[r], mc = mode.maml_choice[r];
  const title = `round ${r + 1} of ${mode.rounds} (${N}-way one-shot)`, bold = {font: 'bold 12px sans-serif'};
  if (g.narrow) { MB.text(ctx, title + ':', g.W / 2, 12, bold); MB.text(ctx, 'which character below is this?', g.W / 2, 27, bold); }
  else MB.text(ctx, title + ': which of the characters below is this?', g.W / 2, 14, bold);
  const q = [g.W / 2 - 42, g.narrow ? 38 : 28, 84, 84];
  ctx.drawImage(img(base + N, 84), ...q); box(ctx, q, '#888', 1);
  rects.forEach((rc, i) => {
    ctx.drawImage(img(base + i), ...rc);
    let color = '#bbb', width = 1;
    if (mode.choice !== null) {
      if (i === answer) { color = '#2ca02c'; width = 4; } else if (i === mode.choice) { color = '#d62728'; width = 4; }
      const tag = (i === mc ? 'MAML ' : '') + (100 * probs[i]).toFixed(0) + '%';
      MB.text(ctx, tag, rc[0] + rc[2] / 2, rc[1] + rc[3] + 10, {color: i === mc ? '#1f77b4' : '#555', font: (i === mc ? 'bold ' : '') + '10px sans-serif'});
    } else MB.text(ctx, String(i + 1), rc[0] + rc[2] / 2, rc[1] + rc[3] + 10, {color: '#555'});
    box(ctx, rc, color, width);
  });
  // the keyboard's candidate, while the game has the focus and the round is open
  if (mode.choice === null && canvas.matches(':focus-visible')) {  // keyboard focus, not a click
    const [x, y, w, h] = rects[mode.cursor]; ctx.setLineDash([4, 3]); box(ctx, [x - 3, y - 3, w + 6, h + 6], '#1f77b4', 2);
    ctx.setLineDash([]);
  }
  root.querySelectorAll('[data-action^=ways]').forEach((b) => b.setAttribute('aria-pressed', String(+b.dataset.action.slice(4) === N)));
  canvas.setAttribute('aria-label', `${title}: the character at the top and ${N} candidates below, numbered 1 to ${N}` +
    ' (pictures only: the characters are not described in words)' +
    (mode.choice === null ? `; the arrow keys move between the candidates, Enter picks one, its number picks it directly` +
      (N > 9 ? ' (two digits for 10 and above)' : '') : '') + '; N: the next round');
  const tally = `${N}-way score: you ${mode.you}/${mode.played}, MAML ${mode.maml}/${mode.played}`;
  const likely = Array.from(probs.keys()).sort((i, j) => probs[j] - probs[i]).slice(0, 3)
    .map((i) => `${i + 1} (${(100 * probs[i]).toFixed(0)}%)`).join(', ');
  let said;  // the readout: a digit waiting, the round's result, the keyboard's candidate, or how to play
  if (first !== null) {
    said = `${first.digit}: a second digit picks ${10 * first.digit} to ${Math.min(N, 10 * first.digit + 9)}, ` +
      `or wait to pick ${first.digit}. ${tally}`;
  } else if (mode.choice !== null) {
    said = `You picked ${mode.choice + 1} (${mode.choice === answer ? 'right' : 'wrong'}); the answer is ${answer + 1} ` +
      `(green). MAML picked ${mc + 1} with probability ${probs[mc].toFixed(2)} (${mc === answer ? 'right' : 'wrong'}); ` +
      `its three most likely: ${likely}. ${tally}` +
      (r === mode.rounds - 1 ? '. That was the last round: "next round" starts them again with a fresh score.' : '');
  } else if (canvas.matches(':focus-visible')) {
    said = `Candidate ${mode.cursor + 1} of ${N}: Enter picks it. ${tally}`;
  } else if (matchMedia('(pointer: coarse)').matches) {
    said = `Tap the matching character. ${tally}`;
  } else {
    said = `Click the matching character, or pick it with the keyboard (arrow keys and Enter; N: next round). ${tally}`;
  }
  MB.say(readout, said, how);
  root.mbLast = {ways: N, round: r, choice: mode.choice, cursor: mode.cursor, answer, maml_choice: mc, maml_probs: Array.from(probs),
                 played: mode.played, you: mode.you, maml: mode.maml, rects, width: g.W,
                 scale: canvas.getBoundingClientRect().width / g.W};
}
const choose = (i) => {
  if (mode.choice !== null || i < 0 || i >= mode.ways) return;
  mode.choice = i; mode.played += 1; mode.you += i === mode.answer[mode.round] ? 1 : 0;
  mode.maml += mode.maml_choice[mode.round] === mode.answer[mode.round] ? 1 : 0; drawn('now');  // the result, said at once
};
canvas.addEventListener('click', (e) => {
  const b = canvas.getBoundingClientRect(), s = +canvas.dataset.w / b.width, x = (e.clientX - b.left) * s, y = (e.clientY - b.top) * s;
  layout().forEach(([rx, ry, w, h], i) => { if (x >= rx && x <= rx + w && y >= ry && y <= ry + h) choose(i); });
});
canvas.style.cursor = 'pointer';
// The keyboard: the canvas takes the focus (Tab); the arrow keys move between the
// candidates as they are laid out, Enter or Space picks, a digit picks that candidate,
// N goes to the next round. A role of application lets a screen reader pass the keys on
// (as an image, Enter would be a click on the canvas's centre). Keys with a modifier,
// and those the game does not use, are left to the page.
canvas.tabIndex = 0;
canvas.setAttribute('role', 'application');
canvas.setAttribute('aria-roledescription', 'game');
// A candidate's number picks it; in 20-way a 1 or a 2 may begin 10 to 20, so it waits
// TWO_DIGITS ms for a second digit before it picks 1 or 2 (saying so at once).
const TWO_DIGITS = 800;
const forget = () => { if (first !== null) { clearTimeout(first.timer); first = null; } };  // a digit left behind
const typed = (d) => {
  if (first !== null) {  // a second digit: 10 to 20, or (past the candidates) the first digit alone
    const n = 10 * first.digit + d, one = first.digit; forget();
    choose((n <= mode.ways ? n : one) - 1); return true;
  }
  if (d === 0 || d > mode.ways) return false;
  if (10 * d > mode.ways) { choose(d - 1); return true; }
  first = {digit: d, timer: setTimeout(() => { const one = first.digit; first = null; choose(one - 1); }, TWO_DIGITS)};
  drawn('now');
  return true;
};
canvas.addEventListener('keydown', (e) => {
  if (e.ctrlKey || e.altKey || e.metaKey) return;
  const N = mode.ways, cols = geometry().cols, moves = {ArrowRight: 1, ArrowLeft: -1, ArrowDown: cols, ArrowUp: -cols};
  if (e.key in moves) { const next = mode.cursor + moves[e.key]; if (next >= 0 && next < N) mode.cursor = next; }
  else if (e.key === 'Enter' || e.key === ' ') choose(mode.cursor);
  else if (/^[0-9]$/.test(e.key) && mode.choice === null) { if (!typed(+e.key)) return; }
  else if (e.key === 'n' || e.key === 'N') root.querySelector('[data-action=next]').click();
  else return;
  e.preventDefault(); e.stopPropagation(); draw();
});
canvas.addEventListener('focus', draw);
canvas.addEventListener('blur', () => { forget(); drawn('shown'); });  // leaving: nothing picked, nothing said
root.querySelectorAll('[data-action]').forEach((b) => b.addEventListener('click', () => {
  const a = b.dataset.action;
  forget();  // a digit typed for the round left behind
  if (a === 'next') {  // after the last round the rounds start again, with a fresh score (never counted twice)
    mode.round += 1; mode.choice = null; mode.cursor = 0;
    if (mode.round === mode.rounds) { mode.round = 0; mode.played = mode.you = mode.maml = 0; }
  }
  else mode = modes[+a.slice(4)];
  draw();
}));
MB.watch(root, draw);
draw();
"""


#: The canvas's accessible name (`_html.render`'s ``label``).
LABEL = "The Omniglot game: one character at the top, the candidates below"


def static(**initial) -> _html.StaticDemo:
    """The precomputed rounds (images, answers, MAML's probabilities) and the game in JavaScript."""
    v = _html.controls_from(DEFAULTS, initial)
    _check_ways(v["ways"])
    modes = []
    for ways in WAYS:
        d = figure_data(ways)
        images = torch.cat([d["support"], d["question_image"][:, None]], 1)  # (R, ways + 1, 28, 28)
        modes.append({"ways": ways, "rounds": len(d["answer"]), "images": quantise(images),
                      "answer": d["answer"].tolist(), "maml_choice": d["maml_choice"].tolist(),
                      "probs": [round(float(p), 4) for p in d["maml_probs"].flatten()]})
    data = {"modes": modes, "ways": v["ways"]}
    controls = (_html.button("ways5", "5-way") + _html.button("ways20", "20-way")
                + _html.button("next", "next round"))
    caption = ("Characters from the three alphabets the network never saw in training, at the 28 × 28 "
               f"pixels it sees. MAML: the shipped checkpoint {RECIPE}, adapted on the round's support set as "
               "for this chapter's results table (three SGD steps; for 20-way, ten steps and a 20-class head "
               "whose rows all start as the mean of the 5 trained ones), probabilities precomputed. Like the "
               "table, it classifies the round's drawing together with one new drawing of every other "
               "candidate (its batch normalisation uses their statistics): it sees a little more than you do. "
               "Green: the answer; red: your wrong pick; percentages: MAML's probabilities.")
    return _html.render("omniglot_game", controls, (700, 320), data, JS, caption, MAX_BYTES,
                        label=LABEL, title='the Omniglot game')
