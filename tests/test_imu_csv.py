"""The generic IMU CSV reader/writer: units, forgiving layout, strict errors naming line and column."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np
import pytest

from legrep.errors import InputError, LegrepError
from legrep.imu_csv import (
    CANONICAL_HEADER,
    STANDARD_GRAVITY_MPS2,
    format_imu_csv,
    parse_imu_csv,
    read_imu_csv,
    write_imu_csv,
)
from legrep.model import ImuBlock

HEADER = ",".join(CANONICAL_HEADER)
ROWS = [
    "0.00,0.01,-0.02,0.99,0.5,-0.25,0.125",
    "0.01,0.02,-0.03,1.01,1.5,-1.25,2.125",
    "0.02,0.03,-0.04,1.02,2.5,-2.25,3.125",
]


def csv_text(*rows: str, header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


def error_of(text: str, name: str = "f.csv") -> str:
    with pytest.raises(InputError) as info:
        parse_imu_csv(text, name)
    message = str(info.value)
    assert "\n" not in message, "an error must be one line"
    assert isinstance(info.value, LegrepError) and isinstance(info.value, ValueError)
    return message


# --------------------------------------------------------------------------- good input


def test_canonical_file_parses_to_the_numbers_written() -> None:
    block = parse_imu_csv(csv_text(*ROWS))
    assert isinstance(block, ImuBlock) and len(block) == 3
    np.testing.assert_array_equal(block.time_s, [0.0, 0.01, 0.02])
    np.testing.assert_array_equal(block.acc_g[1], [0.02, -0.03, 1.01])
    np.testing.assert_array_equal(block.gyr_dps[2], [2.5, -2.25, 3.125])


def test_mps2_and_rads_are_converted_exactly() -> None:
    header = "time_s,acc_x_mps2,acc_y_mps2,acc_z_mps2,gyr_x_rads,gyr_y_rads,gyr_z_rads"
    rows = ["0,9.80665,0,-19.6133,3.141592653589793,0,-1.5707963267948966", "0.5,1,2,3,1,0.5,0.25"]
    block = parse_imu_csv(csv_text(*rows, header=header))
    assert STANDARD_GRAVITY_MPS2 == 9.80665
    np.testing.assert_allclose(block.acc_g[0], [1.0, 0.0, -2.0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(block.acc_g[1], np.array([1, 2, 3]) / 9.80665, rtol=1e-15)
    np.testing.assert_allclose(block.gyr_dps[0], [180.0, 0.0, -90.0], rtol=1e-15)
    np.testing.assert_allclose(block.gyr_dps[1], np.degrees([1.0, 0.5, 0.25]), rtol=1e-15)


@pytest.mark.parametrize(("column", "scale"), [("time_ms", 1e-3), ("time_us", 1e-6), ("time_s", 1.0)])
def test_time_units_are_converted(column: str, scale: float) -> None:
    header = HEADER.replace("time_s", column)
    rows = ["100,0,0,1,0,0,0", "110,0,0,1,0,0,0", "125,0,0,1,0,0,0"]
    block = parse_imu_csv(csv_text(*rows, header=header))
    np.testing.assert_allclose(block.time_s, np.array([100.0, 110.0, 125.0]) * scale, rtol=1e-15)


def test_any_column_order_extra_columns_whitespace_crlf_bom_and_blank_lines() -> None:
    header = "\ufeff label , GYR_Z_DPS,acc_z_g,time_s ,gyr_x_dps,temperature_c,acc_x_g,gyr_y_dps,acc_y_g"
    rows = [
        " warmup , 0.125 , 0.99 , 0.00 , 0.5 , 25.1 , 0.01 , -0.25 , -0.02 ",
        "",
        "lift,2.125,1.01,0.01,1.5,25.2,0.02,-1.25,-0.03",
        "   ",
        "lift,3.125,1.02,0.02,2.5,n/a,0.03,-2.25,-0.04",
        "",
    ]
    text = "\r\n".join([header, *rows]) + "\r\n"
    reordered = parse_imu_csv(text, "x.csv")
    canonical = parse_imu_csv(csv_text(*ROWS))
    np.testing.assert_array_equal(reordered.time_s, canonical.time_s)
    np.testing.assert_array_equal(reordered.acc_g, canonical.acc_g)
    np.testing.assert_array_equal(reordered.gyr_dps, canonical.gyr_dps)


def test_lines_input_equals_text_input() -> None:
    text = csv_text(*ROWS)
    from_lines = parse_imu_csv(text.splitlines(keepends=True))
    from_text = parse_imu_csv(text)
    np.testing.assert_array_equal(from_lines.acc_g, from_text.acc_g)


# --------------------------------------------------------------------------- strict errors


def test_empty_file() -> None:
    message = error_of("")
    assert message.startswith("f.csv:1: ") and "header" in message and "got an empty file" in message
    assert "got an empty file" in error_of("\n \n\r\n")


def test_header_only() -> None:
    message = error_of(HEADER + "\n")
    assert message.startswith("f.csv:2: ") and "data rows expected" in message and "got only the header" in message


def test_missing_unit_names_the_column_and_the_expected_suffixes() -> None:
    message = error_of(csv_text(*ROWS, header=HEADER.replace("acc_x_g", "acc_x")))
    assert message == "f.csv:1: acc_x: expected unit suffix _g or _mps2, got 'acc_x'"


@pytest.mark.parametrize(
    ("bad", "column", "expected"),
    [
        ("gyr_y_rpm", "gyr_y", "_dps or _rads"),
        ("time_min", "time", "_s, _ms or _us"),
        ("acc_z_mg", "acc_z", "_g or _mps2"),
        ("time", "time", "_s, _ms or _us"),
    ],
)
def test_unknown_unit_names_the_column(bad: str, column: str, expected: str) -> None:
    good = {"gyr_y": "gyr_y_dps", "time": "time_s", "acc_z": "acc_z_g"}[column]
    message = error_of(csv_text(*ROWS, header=HEADER.replace(good, bad)))
    assert message.startswith(f"f.csv:1: {column}: expected unit suffix {expected}, got '{bad}'")


def test_missing_column_is_named_with_its_accepted_spellings() -> None:
    header = HEADER.replace(",gyr_z_dps", "")
    rows = [r.rsplit(",", 1)[0] for r in ROWS]
    message = error_of(csv_text(*rows, header=header))
    assert message.startswith("f.csv:1: column gyr_z (gyr_z_dps or gyr_z_rads) expected, got columns")
    assert "time_s,acc_x_g" in message


def test_duplicated_quantity_is_an_error() -> None:
    header = HEADER + ",acc_x_mps2"
    rows = [r + ",0.1" for r in ROWS]
    message = error_of(csv_text(*rows, header=header))
    assert "acc_x: expected one column" in message and "'acc_x_g'" in message and "'acc_x_mps2'" in message


def test_not_comma_separated() -> None:
    message = error_of(csv_text(header=HEADER.replace(",", ";")))
    assert message.startswith("f.csv:1: a comma-separated header") and "got 'time_s;acc_x_g" in message


def test_truncated_last_line_names_its_line_and_is_not_dropped() -> None:
    message = error_of(csv_text(*ROWS, "0.03,0.04,-0.05,1.0"))
    assert message.startswith("f.csv:5: 7 comma-separated fields expected")
    assert "got 4 (truncated last line?)" in message and "'0.03,0.04,-0.05,1.0'" in message


def test_extra_field_in_a_middle_line() -> None:
    message = error_of(csv_text(ROWS[0], ROWS[1] + ",9", ROWS[2]))
    assert message.startswith("f.csv:3: 7 comma-separated fields expected") and "got 8:" in message


def test_line_numbers_count_skipped_blank_lines() -> None:
    text = HEADER + "\n\n" + ROWS[0] + "\n\n\n" + ROWS[1].replace("1.5", "x1.5") + "\n" + ROWS[2] + "\n"
    assert error_of(text).startswith("f.csv:6: column gyr_x_dps: a number expected, got 'x1.5'")


def test_non_numeric_value_names_line_and_column() -> None:
    rows = [ROWS[0], ROWS[1].replace("-0.03", "abc"), ROWS[2]]
    assert error_of(csv_text(*rows)) == "f.csv:3: column acc_y_g: a number expected, got 'abc'"


def test_empty_field_names_line_and_column() -> None:
    rows = [ROWS[0], ROWS[1], ROWS[2].replace("3.125", "")]
    assert error_of(csv_text(*rows)) == "f.csv:4: column gyr_z_dps: a number expected, got ''"


@pytest.mark.parametrize("token", ["nan", "NaN", "inf", "-inf", "Infinity"])
def test_nan_and_inf_name_line_and_column(token: str) -> None:
    rows = [ROWS[0], ROWS[1], ROWS[2].replace("2.5", token)]
    assert error_of(csv_text(*rows)) == f"f.csv:4: column gyr_x_dps: a finite number expected, got '{token}'"


def test_time_going_back_names_both_lines_and_values() -> None:
    rows = [ROWS[0], ROWS[1], ROWS[2].replace("0.02,", "0.005,", 1)]
    message = error_of(csv_text(*rows))
    assert message == (
        "f.csv:4: column time_s: strictly increasing time expected, got going back: 0.005 after 0.01 (line 3)"
    )


def test_duplicated_time_names_both_lines_and_values() -> None:
    rows = [ROWS[0], ROWS[1], ROWS[2].replace("0.02,", "0.01,", 1)]
    message = error_of(csv_text(*rows))
    assert message == "f.csv:4: column time_s: strictly increasing time expected, got duplicated: 0.01 after 0.01 (line 3)"


def test_a_single_sample_is_too_few() -> None:
    assert error_of(csv_text(ROWS[0])) == "f.csv:2: at least 2 samples expected, got 1"


# --------------------------------------------------------------------------- files


def quantised_block(n: int, seed: int = 3) -> tuple[ImuBlock, float, float]:
    """A block whose values are int16 counts times the LSB of a typical IMU (±2 g, ±250 dps)."""
    rng = np.random.default_rng(seed)
    acc_lsb_g = 1.0 / 16384.0  # ±2 g range, 16 bit (e.g. InvenSense MPU-6050 datasheet, AFS_SEL=0)
    gyr_lsb_dps = 1.0 / 131.0  # ±250 dps range, 16 bit (MPU-6050 datasheet, FS_SEL=0)
    acc = rng.integers(-32768, 32768, size=(n, 3)) * acc_lsb_g
    gyr = rng.integers(-32768, 32768, size=(n, 3)) * gyr_lsb_dps
    t = np.cumsum(rng.uniform(0.004, 0.006, size=n)) + 1234.5
    return ImuBlock.from_arrays(t, acc, gyr), acc_lsb_g, gyr_lsb_dps


def test_write_read_round_trip_within_the_lsb(tmp_path: Path) -> None:
    block, acc_lsb, gyr_lsb = quantised_block(5000)
    path = tmp_path / "left.csv"
    write_imu_csv(path, block)
    assert path.read_text().splitlines()[0] == HEADER
    back = read_imu_csv(path)
    assert len(back) == len(block)
    assert np.max(np.abs(back.time_s - block.time_s)) <= 0.5e-6 + 1e-9
    assert np.max(np.abs(back.acc_g - block.acc_g)) < 0.01 * acc_lsb
    assert np.max(np.abs(back.gyr_dps - block.gyr_dps)) < 0.01 * gyr_lsb
    # the counts survive exactly
    np.testing.assert_array_equal(np.round(back.acc_g / acc_lsb), np.round(block.acc_g / acc_lsb))
    np.testing.assert_array_equal(np.round(back.gyr_dps / gyr_lsb), np.round(block.gyr_dps / gyr_lsb))


def test_format_of_an_empty_block_is_just_the_header() -> None:
    empty = ImuBlock.from_arrays(np.zeros(0), np.zeros((0, 3)), np.zeros((0, 3)))
    assert format_imu_csv(empty) == HEADER + "\n"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        read_imu_csv(tmp_path / "nope.csv")
    assert str(info.value) == f"{tmp_path / 'nope.csv'}: an existing IMU CSV file expected, got no such file"


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        read_imu_csv(tmp_path)
    assert str(info.value) == f"{tmp_path}: an IMU CSV file expected, got a directory"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can read files without permission bits")
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.csv"
    path.write_text(csv_text(*ROWS))
    path.chmod(0)
    with pytest.raises(InputError) as info:
        read_imu_csv(path)
    assert "got permission denied" in str(info.value)


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "capture.bin"
    path.write_bytes(b"\x00\xff\xfe\x80" * 10)
    with pytest.raises(InputError) as info:
        read_imu_csv(path)
    assert "UTF-8 text expected" in str(info.value)


def test_file_errors_carry_the_path(tmp_path: Path) -> None:
    path = tmp_path / "right.csv"
    path.write_text(csv_text(ROWS[0], ROWS[1], "0.02,1,2"))
    with pytest.raises(InputError) as info:
        read_imu_csv(path)
    assert str(info.value).startswith(f"{path}:4: 7 comma-separated fields expected")


def test_an_hour_at_100_hz_parses_in_well_under_two_seconds(tmp_path: Path) -> None:
    n = 360_000
    rng = np.random.default_rng(7)
    block = ImuBlock.from_arrays(np.arange(n) / 100.0, rng.normal(size=(n, 3)), 100 * rng.normal(size=(n, 3)))
    path = tmp_path / "hour.csv"
    write_imu_csv(path, block)
    # CPU time of this process, so other jobs on a busy CI machine do not count against it
    start = time.process_time()
    back = read_imu_csv(path)
    elapsed = time.process_time() - start
    assert len(back) == n
    assert math.isclose(back.time_s[-1], (n - 1) / 100.0, abs_tol=1e-6)
    assert elapsed < 2.0, f"parsing 360 000 rows took {elapsed:.2f} s of CPU"


def test_a_bad_value_deep_in_a_long_file_is_located_exactly() -> None:
    rows = [f"{i / 100:.2f},0.1,0.2,0.9,1,2,3" for i in range(20_000)]
    rows[12_345] = rows[12_345].replace(",1,2,3", ",1,2_0,3")  # Python's float() would accept '2_0'
    message = error_of(csv_text(*rows))
    assert message == "f.csv:12347: column gyr_y_dps: a number expected, got '2_0'"


def test_an_extra_column_of_a_known_quantity_is_ignored_beside_a_valid_one() -> None:
    header = HEADER + ",acc_x_raw,time_iso"
    rows = [r + f",{k},2024-01-01T00:00:0{k}" for k, r in enumerate(ROWS)]
    block = parse_imu_csv(csv_text(*rows, header=header))
    np.testing.assert_array_equal(block.acc_g, parse_imu_csv(csv_text(*ROWS)).acc_g)
