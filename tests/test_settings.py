"""Settings ranges: every field declares one; --set, the constructor and stored settings share the check."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from legrep.cli import main
from legrep.errors import InputError
from legrep.model import ImuBlock
from legrep.offline import analyze_arrays
from legrep.settings import Choice, Range, Settings, parse_overrides, setting_rules

FIELDS = [f.name for f in dataclasses.fields(Settings)]


def test_every_field_declares_a_range_that_holds_its_default() -> None:
    rules = setting_rules()
    assert list(rules) == FIELDS
    for name, (rule, kind) in rules.items():
        assert isinstance(rule, (Range, Choice)), name
        default = getattr(Settings(), name)
        assert rule.check(name, default, kind) == default, name
        if isinstance(rule, Range):
            assert math.isfinite(rule.lo) and math.isfinite(rule.hi) and rule.lo < rule.hi, name


OUT_OF_RANGE = ["inf", "-inf", "nan", "1e300", "-1", "abc", ""]


@pytest.fixture(scope="module")
def one_sample_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    csv = tmp_path_factory.mktemp("settings") / "left.csv"
    csv.write_text("time_s,acc_x_g,acc_y_g,acc_z_g,gyr_x_dps,gyr_y_dps,gyr_z_dps\n0,0,0,1,0,0,0\n")
    return csv


@pytest.mark.parametrize("name", FIELDS)
def test_set_outside_the_range_is_one_line(name: str, one_sample_csv: Path, capsys) -> None:
    """Every bad text for every setting is refused by the parser ``--set`` goes through, in one line
    naming the setting; the command line turns each setting's refusal into one line and exit 2 (a
    bad text per setting through ``main``, the texts in turn: main's handling of the refusal is the
    same whatever its words, and building the command line for each of the 546 pairs cost 3 s)."""
    rule, _ = setting_rules()[name]
    texts = [t for t in OUT_OF_RANGE if not (t == "-1" and isinstance(rule, Range) and rule.lo < 0)]  # negatives allowed
    for text in texts:
        with pytest.raises(InputError) as info:
            parse_overrides([f"{name}={text}"])
        assert "\n" not in str(info.value) and str(info.value).startswith(f"--set {name}:"), (text, info.value)
    text = texts[FIELDS.index(name) % len(texts)]
    code = main(["analyze", "--left", str(one_sample_csv), "--no-history", "--set", f"{name}={text}"])
    err = capsys.readouterr().err
    assert code == 2, text
    assert err.count("\n") == 1 and f"--set {name}:" in err and "Traceback" not in err, err


@pytest.mark.parametrize("name", [n for n, (r, _) in setting_rules().items() if isinstance(r, Range) and r.lo_open])
def test_zero_is_refused_where_the_range_is_open(name: str) -> None:
    with pytest.raises(InputError, match=f"--set {name}: 0 < value"):
        parse_overrides([f"{name}=0"])
    with pytest.raises(InputError, match=f"setting {name}: 0 < value"):
        Settings(**{name: 0.0})


def test_stored_settings_are_checked_by_the_same_code() -> None:
    good = Settings(min_rom_deg=25.0)
    assert Settings.from_dict(good.to_dict()) == good
    assert Settings.from_dict({"min_rom_deg": 25}) == good  # missing names: defaults; ints become floats
    for bad, message in [
        ({"bias_tau_s": 0}, "setting bias_tau_s: 0 < value <= 3600 expected, got 0"),
        ({"still_min_s": float("inf")}, "setting still_min_s: a finite number"),
        ({"min_rom_deg": "25"}, "setting min_rom_deg: a number expected, got '25'"),
        ({"min_rom_deg": None}, "setting min_rom_deg: a number expected, got None"),
        ({"min_rom_deg": True}, "setting min_rom_deg: a number expected, got True"),
        ({"nonsense": 1}, "unknown settings ['nonsense']"),
    ]:
        with pytest.raises(InputError) as info:
            Settings.from_dict(bad)
        assert message in str(info.value)
    for not_a_mapping in ("x", None, [1, 2], 3.0):
        with pytest.raises(InputError, match="settings: an object of NAME: value expected"):
            Settings.from_dict(not_a_mapping)  # type: ignore[arg-type]


def _short_session() -> ImuBlock:
    """20 s at 100 Hz: still, then two slow raises about x (enough to exercise every stage)."""
    t = np.arange(0.0, 20.0, 0.01)
    angle = np.where((t % 8 > 3) & (t % 8 < 6), 60.0 * np.sin((t % 8 - 3) / 3 * np.pi), 0.0)
    rate = np.gradient(angle, t)
    a = np.radians(angle)
    acc = np.column_stack([np.zeros_like(t), np.sin(a), np.cos(a)])
    gyr = np.column_stack([rate, np.zeros_like(t), np.zeros_like(t)])
    return ImuBlock.from_arrays(t, acc, gyr)


@pytest.mark.parametrize("name", FIELDS)
def test_every_value_at_the_ends_of_its_range_runs(name: str) -> None:
    """The ranges are honest: the extremes run the pipeline to finite numbers, no exception."""
    rule, kind = setting_rules()[name]
    assert isinstance(rule, Range)
    block = _short_session()
    lo = rule.lo if not rule.lo_open else (rule.lo + 1e-9 if kind is float else rule.lo + 1)
    for value in (lo, rule.hi):
        result = analyze_arrays(left=block, right=block, settings=Settings(**{name: kind(value)}))
        for rep in result.reps:
            assert all(math.isfinite(getattr(rep, f)) for f in ("peak_deg", "rom_deg", "up_s", "hold_s", "down_s"))
