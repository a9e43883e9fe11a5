"""scripts/bench_long_schemes.py at tiny size on the reference model: every scheme runs, the table parses, the
counted network evaluations match each scheme's formula."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "bench_long_schemes.py"
sys.path.insert(0, str(SCRIPT.parent))  # the spawned child that runs each scheme imports the module by name
spec = importlib.util.spec_from_file_location("bench_long_schemes", SCRIPT)
bench = importlib.util.module_from_spec(spec)
sys.modules["bench_long_schemes"] = bench  # its dataclasses look their module up
spec.loader.exec_module(bench)


def _rows(text: str) -> dict[str, dict[str, str]]:
    lines = [line for line in text.splitlines() if line.startswith("|")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    assert tuple(head) == bench.COLUMNS and set(lines[1]) <= set("|-")
    rows = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(head, cells))
    return rows


def test_tiny_run_prints_a_row_per_scheme_at_the_counted_evaluations(tmp_path, capsys):
    e, length, given, k = 2, 12, 4, 8
    argv = ["--length", length, "--num-videos", 1, "--num-observed", given, "--evals-per-frame", e,
            "--no-progress", "--out", tmp_path]
    assert bench.main([str(a) for a in argv]) == 0
    rows = _rows(capsys.readouterr().out)
    assert set(rows) == {"ground truth", *bench.SCHEMES}
    generated = length - given
    expected = {"autoregressive": e * generated, "df-autoregressive": e * generated,
                "fifo": e * (generated + k - 1)}
    for name, evals in expected.items():
        assert int(rows[name]["evaluations / video"]) == evals, name
    truth = rows["ground truth"]
    assert float(truth["persistence"]) == 1.0 and float(truth["miss rate"]) == 0.0
    for name in bench.SCHEMES:
        row = rows[name]
        assert 0 <= float(row["persistence"]) <= 1 and 0 <= float(row["miss rate"]) <= 1, name
        assert float(row["wall s"]) > 0 and float(row["peak memory MB"]) > 10, name
    assert (tmp_path / "bench_long_schemes.md").is_file() and (tmp_path / "bench_long_schemes.json").is_file()
