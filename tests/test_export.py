"""Exports: reps CSV round trip, summary JSON fields, the readable table (hand-built results)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from legrep.diagnostics import Diagnostics, OrientationDiagnostics, SensorDiagnostics
from legrep.errors import InputError
from legrep.export import (
    FLAG_NAMES,
    REPS_COLUMNS,
    format_one_line,
    format_reps_csv,
    format_table,
    parse_reps_csv,
    read_reps_csv,
    summary_dict,
    write_reps_csv,
    write_summary_json,
)
from legrep.model import Leg, Rep, SessionResult, SetSummary
from legrep.settings import Settings


def make_rep(leg: Leg, set_no: int, rep_no: int, start_s: float, flags: tuple[str, ...] = (), peak_deg: float = 85.0) -> Rep:
    up, hold, down = 1.2 + 0.01 * rep_no, 0.5, 2.0 + 0.02 * rep_no
    baseline = 3.25
    return Rep(
        leg=leg,
        start_s=start_s,
        peak_s=start_s + up + hold / 2,
        end_s=start_s + up + hold + down,
        baseline_deg=baseline,
        peak_deg=peak_deg,
        rom_deg=peak_deg - baseline,
        up_s=up,
        hold_s=hold,
        down_s=down,
        closed_s=start_s + up + hold + down + 0.25,
        flags=flags,
        set=set_no,
        rep=rep_no,
    )


def uneven_session() -> SessionResult:
    """Set 1: 3 left / 3 right; set 2: 3 left / 2 right (uneven), some flags."""
    reps: list[Rep] = []
    for leg, offset in ((Leg.LEFT, 0.0), (Leg.RIGHT, 0.4)):
        for k in range(3):
            flags = ("fast_down",) if (leg is Leg.RIGHT and k == 1) else ()
            reps.append(make_rep(leg, 1, k + 1, 2.0 + 5.0 * k + offset, flags))
        for k in range(3 if leg is Leg.LEFT else 2):
            flags = ("partial", "fast_up") if (leg is Leg.LEFT and k == 2) else ()
            reps.append(make_rep(leg, 2, k + 1, 60.0 + 5.0 * k + offset, flags, peak_deg=60.0 if flags else 88.0))
    sets = (
        SetSummary(1, 2.0, 16.0 + 3.74, 3, 3, False),
        SetSummary(2, 60.0, 74.0 + 3.74, 3, 2, True),
    )
    return SessionResult(reps=tuple(reps), sets=sets, legs=(Leg.LEFT, Leg.RIGHT), uneven=True,
                         diagnostics=Diagnostics({"left": SensorDiagnostics(samples=100, orientation=ORIENTATION)}))


ORIENTATION = OrientationDiagnostics(
    gyro_bias_dps=(0.5, 0.0, 0.0), gaps=0, max_gap_s=0.0, bias_updates=3, acc_bias_g=(0.0, 0.0, 0.0),
    acc_bias_updates=0, gap_restarts=0, lever_m=(0.0, 0.0, 0.1), still_fraction=0.5,
)


def test_reps_csv_header_and_formatting() -> None:
    text = format_reps_csv(uneven_session())
    lines = text.splitlines()
    assert lines[0] == "set,leg,rep,start_s,peak_s,end_s,baseline_deg,peak_deg,rom_deg,up_s,hold_s,down_s,flags,pelvis_tilt_deg"
    assert lines[0].split(",") == list(REPS_COLUMNS)
    assert len(lines) == 1 + 11
    # ordered by set, leg (left first), rep; times 3 decimals, angles 1 decimal
    assert lines[1] == "1,left,1,2.000,3.460,5.730,3.2,85.0,81.8,1.210,0.500,2.020,,"  # no pelvis sensor: empty tilt
    flagged = [ln for ln in lines if ln.endswith("partial;fast_up,")]
    assert len(flagged) == 1 and flagged[0].startswith("2,left,3,")


def test_reps_csv_written_and_read_back_equals_the_reps(tmp_path: Path) -> None:
    result = uneven_session()
    path = tmp_path / "reps.csv"
    write_reps_csv(path, result)
    back = read_reps_csv(path)
    assert len(back) == len(result.reps)
    key = lambda r: (r.set, r.leg.value, r.rep)  # noqa: E731
    for got, want in zip(sorted(back, key=key), sorted(result.reps, key=key)):
        assert (got.set, got.leg, got.rep, got.flags) == (want.set, want.leg, want.rep, want.flags)
        for name in ("start_s", "peak_s", "end_s", "up_s", "hold_s", "down_s"):
            assert getattr(got, name) == pytest.approx(getattr(want, name), abs=0.0005), name
        for name in ("peak_deg", "rom_deg", "baseline_deg"):
            assert getattr(got, name) == pytest.approx(getattr(want, name), abs=0.1), name


def test_reps_csv_of_a_session_without_reps(tmp_path: Path) -> None:
    empty = SessionResult(reps=(), sets=(), legs=(Leg.LEFT,), uneven=False)
    write_reps_csv(tmp_path / "r.csv", empty)
    assert (tmp_path / "r.csv").read_text() == ",".join(REPS_COLUMNS) + "\n"
    assert read_reps_csv(tmp_path / "r.csv") == ()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("set,leg,rep,start_s,peak_s,end_s,baseline_deg,peak_deg,rom_deg,up_s,hold_s,down_s", "column 13 'flags' expected, got end of header"),
        ("set,leg,rep,start_s,peak_s,end,baseline_deg,peak_deg,rom_deg,up_s,hold_s,down_s,flags", "column 6 'end_s' expected, got 'end'"),
        ("set,leg,rep,start_s,peak_s,end_s,baseline_deg,peak_deg,rom_deg,up_s,hold_s,down_s,flags,x", "got extra column 'x'"),
    ],
)
def test_reps_csv_strict_columns(header: str, expected: str) -> None:
    with pytest.raises(InputError) as info:
        parse_reps_csv(header + "\n", "r.csv")
    assert str(info.value).startswith("r.csv:1: ") and expected in str(info.value)


def test_reps_csv_bad_values_name_line_and_column() -> None:
    good = "1,left,1,2.000,3.460,5.730,3.2,85.0,81.8,1.210,0.500,2.020,,"  # empty flags, empty pelvis_tilt_deg
    head = ",".join(REPS_COLUMNS)
    cases = {
        good.replace("3.460", "soon"): "r.csv:3: column peak_s: a number expected, got 'soon'",
        good.replace("left", "middle"): "r.csv:3: column leg: 'left' or 'right' expected, got 'middle'",
        good.replace("1,left,1", "1,left,one"): "r.csv:3: column rep: an integer expected, got 'one'",
        good.replace("85.0", "nan"): "r.csv:3: column peak_deg: a finite number expected, got 'nan'",
        good[:-1]: "r.csv:3: 14 fields expected, got 13",
    }
    for row, message in cases.items():
        with pytest.raises(InputError) as info:
            parse_reps_csv(f"{head}\n{good}\n{row}\n", "r.csv")
        assert str(info.value).startswith(message)


def test_summary_json_fields(tmp_path: Path) -> None:
    result = uneven_session()
    settings = Settings(min_rom_deg=25.0)
    path = tmp_path / "summary.json"
    write_summary_json(path, result, settings)
    data = json.loads(path.read_text())
    assert data == summary_dict(result, settings)
    assert data["uneven"] is True
    assert data["legs"] == ["left", "right"]
    assert data["sets"] == [
        {"set": 1, "start_s": 2.0, "end_s": 19.74, "left_reps": 3, "right_reps": 3, "uneven": False,
         "exercise": "unknown"},
        {"set": 2, "start_s": 60.0, "end_s": 77.74, "left_reps": 3, "right_reps": 2, "uneven": True,
         "exercise": "unknown"},
    ]
    left, right = data["per_leg"]["left"], data["per_leg"]["right"]
    assert (left["reps"], right["reps"]) == (6, 5)
    left_reps = result.reps_of(Leg.LEFT)
    assert left["mean_peak_deg"] == pytest.approx(sum(r.peak_deg for r in left_reps) / 6, abs=0.005)
    assert left["mean_rom_deg"] == pytest.approx(sum(r.rom_deg for r in left_reps) / 6, abs=0.005)
    assert left["mean_up_s"] == pytest.approx(sum(r.up_s for r in left_reps) / 6, abs=0.0005)
    assert left["mean_hold_s"] == pytest.approx(0.5)
    assert left["mean_down_s"] == pytest.approx(sum(r.down_s for r in left_reps) / 6, abs=0.0005)
    assert set(left["flags"]) == set(FLAG_NAMES)
    assert left["flags"]["partial"] == 1 and left["flags"]["fast_up"] == 1 and left["flags"]["fast_down"] == 0
    assert right["flags"]["fast_down"] == 1 and right["flags"]["partial"] == 0
    assert data["settings"]["min_rom_deg"] == 25.0
    assert Settings.from_dict(data["settings"]) == settings
    with open(Path(__file__).resolve().parents[1] / "pyproject.toml", "rb") as fh:
        assert data["legrep_version"] == tomllib.load(fh)["project"]["version"]
    assert data["diagnostics"]["left"]["gyro_bias_x_dps"] == 0.5 and data["diagnostics"]["left"]["bias_updates"] == 3


def test_summary_of_a_leg_without_reps_has_null_means() -> None:
    result = SessionResult(reps=(), sets=(), legs=(Leg.RIGHT,), uneven=False)
    data = summary_dict(result)
    assert data["per_leg"] == {
        "right": {
            "reps": 0,
            "mean_baseline_deg": None,
            "mean_peak_deg": None,
            "mean_rom_deg": None,
            "mean_up_s": None,
            "mean_hold_s": None,
            "mean_down_s": None,
            "flags": {name: 0 for name in FLAG_NAMES},
        }
    }
    assert data["settings"] == Settings().to_dict()


def test_table_marks_the_uneven_set() -> None:
    table = format_table(uneven_session())
    lines = table.splitlines()
    set_lines = [ln for ln in lines if ln.startswith("Set ")]
    assert len(set_lines) == 2
    assert "UNEVEN" not in set_lines[0] and set_lines[0].endswith("even")
    assert set_lines[1].endswith("UNEVEN (3 left / 2 right)")
    assert table.count("UNEVEN (") == 1
    assert "fast_down 1" in table and "partial 1, fast_up 1" in table
    assert lines[-1] == "Total: 11 reps (left 6, right 5) in 2 sets; UNEVEN in set 2"
    # per-leg session lines carry the counts and mean peak
    session = lines[lines.index("Session") :]
    left_line = next(ln for ln in session if ln.strip().startswith("left"))
    assert left_line.split()[1] == "6"
    mean_peak = sum(r.peak_deg for r in uneven_session().reps_of(Leg.LEFT)) / 6
    assert left_line.split()[2] == f"{mean_peak:.1f}"


def test_table_of_an_even_session_and_one_leg() -> None:
    result = uneven_session()
    even = SessionResult(
        reps=tuple(r for r in result.reps if r.set == 1), sets=result.sets[:1], legs=result.legs, uneven=False
    )
    assert "UNEVEN" not in format_table(even)
    assert format_one_line(even) == "Total: 6 reps (left 3, right 3) in 1 set; every set even"
    one = SessionResult(
        reps=tuple(r for r in result.reps if r.leg is Leg.LEFT),
        sets=tuple(SetSummary(s.set, s.start_s, s.end_s, s.left_reps, 0, False) for s in result.sets),
        legs=(Leg.LEFT,),
        uneven=False,
    )
    table = format_table(one)
    assert "right" not in table and "one leg" in table
    assert format_one_line(one) == "Total: 6 reps (left 6) in 2 sets"
    assert "no reps" in format_table(SessionResult(reps=(), sets=(), legs=(Leg.LEFT,), uneven=False))


def test_writing_into_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        write_reps_csv(tmp_path / "no" / "reps.csv", uneven_session())
    assert "expected, got a missing folder" in str(info.value)
    with pytest.raises(InputError) as info:
        write_summary_json(tmp_path, uneven_session())
    assert "got a directory" in str(info.value)


# --------------------------------------------------------------------------- file replay (analysis fed in blocks)


def test_file_replay_equals_the_live_path_replay(tmp_path: Path) -> None:
    import numpy as np

    from legrep.cli import main
    from legrep.imu_csv import format_imu_csv
    from legrep.model import ImuBlock, Leg
    from legrep.replay import replay_core
    from legrep.replay_batch import replay_file

    from test_recording import run_session

    path = tmp_path / "s.legrep"
    _sim, _fws, _live_core, live_result, _events = run_session(path, seed=9)  # lost, corrupt, duplicated packets
    core_ref, ref, _ = replay_core(path, keep_samples=True)
    fed: dict[Leg, list[ImuBlock]] = {}
    core, fast, _ = replay_file(path, on_samples=lambda leg, b: fed.setdefault(leg, []).append(b))
    assert fast.reps == ref.reps == live_result.reps and len(ref.reps) == 6
    assert fast.sets == ref.sets and fast.uneven == ref.uneven
    assert fast.diagnostics == ref.diagnostics
    for leg in (Leg.LEFT, Leg.RIGHT):
        np.testing.assert_array_equal(fast.traces[leg][0], ref.traces[leg][0])
        np.testing.assert_array_equal(fast.traces[leg][1], ref.traces[leg][1])
        samples = ImuBlock(*(np.concatenate(x) for x in zip(*[(b.time_s, b.acc_g, b.gyr_dps) for b in fed[leg]])))
        assert format_imu_csv(samples) == format_imu_csv(core_ref.samples(leg))
    assert sorted(map(repr, core.events)) == sorted(map(repr, core_ref.events))

    # export writes those same samples
    out = tmp_path / "out"
    assert main(["export", str(path), "--out", str(out)]) == 0
    for leg in (Leg.LEFT, Leg.RIGHT):
        assert (out / f"imu_{leg.value}.csv").read_text() == format_imu_csv(core_ref.samples(leg))
    assert not list(out.glob("*.part"))


@pytest.mark.parametrize("seed", range(4))
def test_the_sample_rows_are_pythons_formatting_byte_for_byte(seed: int) -> None:
    """format_imu_rows (export's writer) against Python's %-format and against format_rows: sensor
    counts times their LSBs (from the table), zeros of both signs, other values, half-microsecond
    ties and near-ties in time, times from 0 to 10**8 s."""
    import numpy as np

    from legrep._csvscan import format_rows
    from legrep._replaycore import format_imu_rows

    rng = np.random.default_rng(seed)
    n = 20000
    t = np.cumsum(rng.random(n) * 0.02) + [0.0, 17.0, 3e4, 1e8][seed]
    t[::50] = np.round(t[::50] * 128) / 128 + [0.0, 1e-12][seed % 2]  # x.xxxxxx5 exactly (or just off)
    acc_lsb, gyr_lsb = [(1 / 4096, 1 / 32.8), (0.000244140625, 0.030517578125), (0.0005, 0.07), (1e-3, 1.0)][seed]
    raw = rng.integers(-32768, 32768, size=(n, 6)).astype(float)
    values = np.column_stack([raw[:, :3] * acc_lsb, raw[:, 3:] * gyr_lsb])
    values[::7, 1] = rng.normal(size=len(values[::7])) * 10.0 ** rng.integers(-6, 6, len(values[::7]))
    values[::11, 2] = 0.0
    values[::13, 4] = -0.0
    values[::17, 5] *= 1.0 + 2.0**-52
    got = format_imu_rows(t, values, acc_lsb, gyr_lsb)
    fmt = "%.6f," + ",".join(["%.8g"] * 6) + "\n"
    assert got == "".join(fmt % (ti, *row) for ti, row in zip(t.tolist(), values.tolist())).encode()
    assert format_imu_rows(t, values, 0.0, 0.0) == got  # (no table)
    if seed != 2:  # (format_rows is printf's only for power-of-two LSBs, which seed 2 has not)
        assert format_rows(t, values) == got


def test_the_background_sample_writer_writes_the_same_bytes_and_raises_its_error(tmp_path: Path) -> None:
    """SampleCsvWriter(background=True) (export's writer beside the analysis): the same file as
    the writer in the caller's thread, whatever the blocks; formatting from two threads at once
    (two legs' writers share the LSB tables) gives each its own rows; a failure of the writer thread
    (here: its file closed under it) is raised by flush, not lost."""
    import numpy as np

    from legrep.export import SampleCsvWriter
    from legrep.model import ImuBlock

    rng = np.random.default_rng(3)
    lsb = (1 / 4096, 1 / 32.8)
    blocks = []
    t0 = 0.0
    for n in (1, 70000, 5, 3000):  # (one longer than a formatting step of 65536 rows)
        raw = rng.integers(-32768, 32768, size=(n, 6)).astype(float)
        t = t0 + 0.01 * np.arange(n)
        t0 = float(t[-1]) + 0.01
        blocks.append(ImuBlock(t, raw[:, :3] * lsb[0], raw[:, 3:] * lsb[1]))
    with SampleCsvWriter(tmp_path / "fg.csv", *lsb) as fg:
        for b in blocks:
            fg.write(b)
    bgs = [SampleCsvWriter(tmp_path / f"bg{i}.csv", *lsb, background=True) for i in range(2)]
    for b in blocks:
        for w in bgs:
            w.write(b)
    for w in bgs:
        w.close()
    want = (tmp_path / "fg.csv").read_bytes()
    assert want.count(b"\n") == 1 + sum(len(b) for b in blocks)
    for i in range(2):
        assert (tmp_path / f"bg{i}.csv").read_bytes() == want

    broken = SampleCsvWriter(tmp_path / "broken.csv", *lsb, background=True)
    broken._fh.close()  # every write of the thread fails
    broken.write(blocks[0])
    with pytest.raises(ValueError, match="closed file"):
        broken.flush()
    broken.flush()  # (raised once)
