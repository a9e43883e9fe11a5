"""`vidiff scheme`: summary, ASCII table and the PNG picture of a plan."""

import argparse

import pytest
from PIL import Image

from vidiff.commands import scheme
from vidiff.schemes import plan
from vidiff.schemes.draw import COLOURS, ascii_plan, cell_state, cell_states, layout, render_plan


def run(argv):
    parser = argparse.ArgumentParser()
    scheme.add_arguments(parser)
    return scheme.run(parser.parse_args(argv))


def test_png_pixels_match_the_plan(tmp_path, capsys):
    out = tmp_path / "sub" / "plan.png"
    argv = [
        "--name",
        "hierarchy-2",
        "--length",
        "300",
        "--max-frames",
        "20",
        "--given",
        "36",
        "--png",
        str(out),
    ]
    assert run(argv) == 0
    stdout = capsys.readouterr().out
    assert "stages (sequential network passes): 27" in stdout and f"wrote {out}" in stdout
    assert [p.name for p in out.parent.iterdir()] == ["plan.png"]  # no temporary file left behind
    stages = plan("hierarchy-2", 300, 20, 10, range(36))
    image = Image.open(out).convert("RGB")
    geo = layout(len(stages), 300)
    assert image.size == (geo.width, geo.height)
    cells = {
        (0, 0): "observed",  # level 1 observes frame 0 ...
        (0, 1): "given",  # ... but not frame 1
        (0, 36): "generated",
        (0, 37): "todo",
        (0, 299): "generated",
        (1, 36): "observed",
        (1, 38): "done" if 38 not in stages[1].latent + stages[1].observed else None,
        (26, 150): "done",
        (26, 20): "given",
    }
    for (row, frame), expected in cells.items():
        state = cell_state(stages, 300, range(36), row, frame)
        if expected is not None:
            assert state == expected, (row, frame, state)
        x0, y0, x1, y1 = geo.cell_box(row, frame)
        for x, y in ((x0, y0), (x1, y1), ((x0 + x1) // 2, (y0 + y1) // 2)):
            assert image.getpixel((x, y)) == COLOURS[state], (row, frame, state)


def test_render_colours_every_cell():
    stages = plan("interpolate", 30, 6, 3, [0, 29])
    image = render_plan(stages, 30, [0, 29])
    geo = layout(len(stages), 30)
    for row, states in enumerate(cell_states(stages, 30, [0, 29])):
        for frame, state in enumerate(states):
            x0, y0, x1, y1 = geo.cell_box(row, frame)
            assert image.getpixel(((x0 + x1) // 2, (y0 + y1) // 2)) == COLOURS[state]


def test_list_prints_the_ascii_table(capsys):
    assert (
        run(
            [
                "--name",
                "autoregressive",
                "--length",
                "10",
                "--max-frames",
                "4",
                "--step-size",
                "2",
                "--given",
                "2",
                "--list",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "0 ooXX......" in out and "3 ==----ooXX" in out
    table = ascii_plan(plan("autoregressive", 10, 4, 2, range(2)), 10, range(2))
    assert table in out


def test_given_indices_with_commas_and_spaces(capsys):
    assert (
        run(
            [
                "--name",
                "interpolate",
                "--length",
                "12",
                "--max-frames",
                "4",
                "--given-indices",
                "0,5",
                "11",
                "--list",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "3 given" in out and "waves (batched passes): " in out


@pytest.mark.parametrize(
    ("argv", "argument"),
    [
        (["--length", "10", "--max-frames", "20"], "length"),
        (["--length", "50", "--max-frames", "8", "--given-indices", "60"], "given"),
        (["--length", "50", "--max-frames", "8", "--given-indices", "x"], "--given-indices"),
        (["--length", "50", "--max-frames", "8", "--given", "-1"], "--given"),
        (["--name", "nope", "--length", "50", "--max-frames", "8"], "hierarchy-N"),
        (["--length", "50", "--max-frames", "8", "--step-size", "8"], "step_size"),
        (["--length", "50", "--max-frames", "8", "--max-batch", "0"], "--batch-budget"),  # the old spelling
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(argv, argument, capsys, tmp_path):
    assert run(argv + ["--png", str(tmp_path / "p.png")]) == 2
    assert argument in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_command_module_contract():
    assert isinstance(scheme.HELP, str) and scheme.HELP
    assert callable(scheme.add_arguments) and callable(scheme.run)


def test_render_long_video_with_touching_cells():
    # 600 frames: cells are 2 pixels wide with no gap, so runs of equal cells are drawn as one rectangle
    stages = plan("predict-then-interpolate", 600, 8, 4, range(10))
    image = render_plan(stages, 600, range(10))
    geo = layout(len(stages), 600)
    assert geo.gap_x == 0 and geo.cell_w == 2
    states = cell_states(stages, 600, range(10))
    for row in (0, len(stages) // 2, len(stages) - 1):
        for frame in range(600):
            x0, y0, x1, y1 = geo.cell_box(row, frame)
            assert image.getpixel((x0, y0)) == image.getpixel((x1, y1)) == COLOURS[states[row][frame]]


def test_png_has_a_frame_axis_readable_at_300_frames(tmp_path, capsys):
    """`vidiff scheme --png` at 300 frames: a tick under every round frame number (0, 25, ..., 275 and the
    last frame), between the grid and the legend."""
    from vidiff.cli import main
    from vidiff.schemes.draw import AXIS_H, INK, tick_step

    assert main(["scheme", "--name", "hierarchy-2", "--length", "300", "--max-frames", "20",
                 "--png", str(tmp_path / "p.png")]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith(f"wrote {tmp_path / 'p.png'}")
    stages = plan("hierarchy-2", 300, 20)
    geo = layout(len(stages), 300)
    assert tick_step(299) == 25 and geo.cell_w >= 4
    assert geo.height >= geo.top + len(stages) * geo.cell_h + AXIS_H
    with Image.open(tmp_path / "p.png") as im:
        y = geo.top + len(stages) * geo.cell_h + 2 + 4  # inside a major tick, below the minor ones
        ink = [x for x in range(geo.left, geo.left + 300 * geo.cell_w) if im.getpixel((x, y)) == INK]
    centre = lambda f: geo.left + f * geo.cell_w + (geo.cell_w - 1 - geo.gap_x) // 2  # noqa: E731
    assert ink == [centre(f) for f in [*range(0, 300, 25), 299]]
