"""The generic IMU CSV reader/writer: units, forgiving layout, strict errors naming line and column."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

from legrep.errors import InputError, LegrepError
from legrep.imu_csv import (
    CANONICAL_HEADER,
    STANDARD_GRAVITY_MPS2,
    ImuCsvParser,
    format_imu_csv,
    iter_imu_csv,
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


def test_an_hour_at_100_hz_streams_in_blocks_equal_to_the_whole(tmp_path: Path) -> None:
    n = 360_000
    rng = np.random.default_rng(7)
    block = ImuBlock.from_arrays(np.arange(n) / 100.0, rng.normal(size=(n, 3)), 100 * rng.normal(size=(n, 3)))
    path = tmp_path / "hour.csv"
    write_imu_csv(path, block)
    blocks = list(iter_imu_csv(path))
    assert len(blocks) > 5 and max(len(b) for b in blocks) <= 65536  # streamed, not read whole
    back = read_imu_csv(path)
    assert len(back) == n
    assert math.isclose(back.time_s[-1], (n - 1) / 100.0, abs_tol=1e-6)
    np.testing.assert_array_equal(np.concatenate([b.gyr_dps for b in blocks]), back.gyr_dps)
    # the same numbers as numpy's own reader of the same file
    ref = np.loadtxt(path, delimiter=",", skiprows=1)
    np.testing.assert_array_equal(back.time_s, ref[:, 0])
    np.testing.assert_array_equal(back.acc_g, ref[:, 1:4])
    np.testing.assert_array_equal(back.gyr_dps, ref[:, 4:7])


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


# --------------------------------------------------------------------------- streaming: fast path == reference


def parse_bytes(data: bytes, *, fast: bool = True, cuts: list[int] | None = None) -> ImuBlock | str:
    """Feed ``data`` cut at ``cuts``; the block, or the error message."""
    parser = ImuCsvParser("f.csv", fast=fast)
    edges = [0, *sorted(cuts or []), len(data)]
    blocks: list[ImuBlock] = []
    try:
        for a, b in zip(edges, edges[1:]):
            blocks += parser.feed(data[a:b])
        blocks += parser.finish()
    except InputError as exc:
        assert "\n" not in str(exc)
        return str(exc)
    for b in blocks:
        assert np.isfinite(b.time_s).all() and np.isfinite(b.acc_g).all() and np.isfinite(b.gyr_dps).all()
    return ImuBlock(
        np.concatenate([b.time_s for b in blocks]),
        np.concatenate([b.acc_g for b in blocks]),
        np.concatenate([b.gyr_dps for b in blocks]),
    )


def same(a: ImuBlock | str, b: ImuBlock | str) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return all(np.array_equal(x, y) for x, y in ((a.time_s, b.time_s), (a.acc_g, b.acc_g), (a.gyr_dps, b.gyr_dps)))


def awkward_numbers(rng: np.random.Generator, n: int) -> list[str]:
    """Spellings the C scanner parses itself and ones it hands to dtoa (17+ digits, big exponents)."""
    out = []
    for k in range(n):
        v = float(rng.normal() * 10.0 ** rng.integers(-30, 30))
        forms = [repr(v), f"{v:.8g}", f"{v:e}", f"{v:.20f}", f"+{abs(v):.3f}", f"{v:.0f}.", f".{k:d}5",
                 f"  {v:.6f}\t", f"{'0' * 25}{abs(v):.25g}"]
        out.append(forms[k % len(forms)])
    return out


def test_fast_path_numbers_equal_the_reference_parser() -> None:
    rng = np.random.default_rng(11)
    rows = [",".join([f"{i}.5", *awkward_numbers(rng, 6)]) for i in range(3000)]
    data = csv_text(*rows).encode()
    fast, ref = parse_bytes(data), parse_bytes(data, fast=False)
    assert not isinstance(fast, str) and same(fast, ref)
    numpy_ref = np.loadtxt(rows, delimiter=",")
    np.testing.assert_array_equal(fast.acc_g, numpy_ref[:, 1:4])
    np.testing.assert_array_equal(fast.gyr_dps, numpy_ref[:, 4:7])


@pytest.mark.parametrize("step", [1, 7, 64, 1000])
def test_any_slicing_gives_the_same_samples_and_errors(step: int) -> None:
    lines = [HEADER + ",note", *[r + ",é ok" for r in ROWS], "", "  ", ROWS[2].replace("0.02,", "0.03,", 1) + ",x"]
    data = ("\ufeff" + "\r\n".join(lines) + "\r\n").encode()
    whole = parse_bytes(data)
    assert not isinstance(whole, str) and len(whole) == 4
    assert same(parse_bytes(data, cuts=list(range(step, len(data), step))), whole)
    bad = data.replace(b"1.5,", b"1.5x,")
    message = parse_bytes(bad)
    assert message == "f.csv:3: column gyr_x_dps: a number expected, got '1.5x'"
    assert parse_bytes(bad, cuts=list(range(step, len(bad), step))) == message


def _read_blocks(path: Path, block_bytes: int) -> ImuBlock | str:
    try:
        blocks = list(iter_imu_csv(path, block_bytes=block_bytes))
    except InputError as exc:
        return str(exc).replace(str(path), "f.csv")
    return ImuBlock(*(np.concatenate(parts) for parts in zip(*[(b.time_s, b.acc_g, b.gyr_dps) for b in blocks])))


@pytest.mark.parametrize(
    "text",
    [
        csv_text(*ROWS, "0.03,0.04,-0.05,1.0"),
        csv_text(ROWS[0], ROWS[1] + ",9", ROWS[2]),
        csv_text(ROWS[0], ROWS[1], ROWS[2].replace("2.5", "inf")),
        csv_text(ROWS[0], ROWS[1], ROWS[2].replace("0.02,", "0.005,", 1)),
        csv_text(ROWS[0], ROWS[1], ROWS[2].replace("0.02,", "0.01,", 1)),
        csv_text(ROWS[0]),
        csv_text(ROWS[0], ROWS[1].replace("-0.03", "1e999")),
        HEADER + "\n" + ROWS[0] + "\r" + ROWS[1] + "\n",
        csv_text(*ROWS),
    ],
)
def test_errors_are_the_same_on_both_paths_and_in_tiny_blocks(tmp_path: Path, text: str) -> None:
    expected = parse_bytes(text.encode(), fast=False)
    assert same(parse_bytes(text.encode()), expected)
    path = tmp_path / "x.csv"
    path.write_bytes(text.encode())
    for size in (1, 5, 1 << 22):
        assert same(_read_blocks(path, size), expected), (size, expected)


def test_a_lone_cr_ends_a_line_as_before() -> None:
    block = parse_imu_csv(HEADER + "\r" + ROWS[0] + "\r" + ROWS[1] + "\r")
    assert len(block) == 2
    assert error_of(HEADER + "\r" + ROWS[0] + "\r" + ROWS[1].replace("1.5", "?") + "\r") == (
        "f.csv:3: column gyr_x_dps: a number expected, got '?'"
    )


def test_a_non_utf8_byte_is_reported_with_its_offset(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    data = csv_text(*ROWS).encode()
    at = data.index(b"-0.25")
    path.write_bytes(data[:at] + b"\xff" + data[at + 1 :])
    with pytest.raises(InputError) as info:
        read_imu_csv(path)
    assert str(info.value) == f"{path}: UTF-8 text expected, got a non-text byte at offset {at}"


def test_a_block_boundary_inside_a_row_changes_nothing(tmp_path: Path) -> None:
    rows = [f"{i / 100:.2f},0.1,0.2,0.9,1,2,3" for i in range(5000)]
    rows[3333] = rows[3333].replace(",2,3", ",2,")
    path = tmp_path / "x.csv"
    path.write_text(csv_text(*rows))
    for size in (13, 100, 4096, 1 << 22):
        with pytest.raises(InputError) as info:
            list(iter_imu_csv(path, block_bytes=size))
        assert str(info.value) == f"{path}:3335: column gyr_z_dps: a number expected, got ''"


# --------------------------------------------------------------------------- properties (hypothesis)

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

GOOD = csv_text(*[f"{i / 100:.2f},{0.01 * i:.4f},-0.02,0.99,{i % 7 - 3.5},-0.25,0.125" for i in range(40)]).encode()
_PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_outcome(data: bytes, cuts: list[int]) -> None:
    """Only InputError, never non-finite samples; any slicing and both paths agree."""
    result = parse_bytes(data)
    assert same(parse_bytes(data, cuts=[c for c in cuts if c <= len(data)]), result)
    assert same(parse_bytes(data, fast=False), result)
    if not isinstance(result, str):
        assert len(result) >= 2 and bool(np.all(np.diff(result.time_s) > 0))


@_PROPS
@given(st.binary(max_size=400), st.lists(st.integers(0, 400), max_size=4))
def test_random_bytes_give_samples_or_one_input_error(data: bytes, cuts: list[int]) -> None:
    check_outcome(data, cuts)


@_PROPS
@given(st.integers(0, len(GOOD)), st.lists(st.integers(0, len(GOOD)), max_size=3))
def test_truncations_give_samples_or_one_input_error(keep: int, cuts: list[int]) -> None:
    check_outcome(GOOD[:keep], cuts)


@_PROPS
@given(
    st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(0, 7)), min_size=1, max_size=4),
    st.lists(st.integers(0, len(GOOD)), max_size=3),
)
def test_bit_flips_give_samples_or_one_input_error(flips: list[tuple[int, int]], cuts: list[int]) -> None:
    data = bytearray(GOOD)
    for at, bit in flips:
        data[at] ^= 1 << bit
    check_outcome(bytes(data), cuts)


@_PROPS
@given(st.text(alphabet="0123456789.-+eE \t_xnaif,", min_size=1, max_size=14))
def test_any_field_spelling_parses_as_the_reference_does(field: str) -> None:
    data = csv_text(ROWS[0], ROWS[1].replace("-1.25", field, 1), ROWS[2]).encode()
    check_outcome(data, [len(data) // 2])


def test_the_c_writer_writes_what_python_formatting_writes() -> None:
    rng = np.random.default_rng(5)
    n = 20_000
    t = np.cumsum(rng.uniform(0.004, 0.006, n)) + 1234.5
    counts = rng.integers(-32768, 32768, size=(n, 6)) * np.array([2.0**-14] * 3 + [2000 / 32768] * 3)
    wide = rng.normal(size=(n, 6)) * 10.0 ** rng.integers(-12, 14, size=(n, 6))
    wide[:5] = [[0.0, -0.0, 1e-5, 99999999.5, 1.0, -1e8]] * 5
    fmt = "%.6f," + ",".join(["%.8g"] * 6)
    for values in (counts, wide):
        block = ImuBlock.from_arrays(t, values[:, :3], values[:, 3:])
        expected = HEADER + "\n" + "".join(fmt % tuple(row) + "\n" for row in np.column_stack([t, values]).tolist())
        assert format_imu_csv(block) == expected


def test_reading_into_one_reused_buffer_keeps_the_previous_lines_text(tmp_path: Path) -> None:
    """iter_imu_csv reads every block into the same buffer: the error for a time going back quotes
    the previous row's text even when that row came in an earlier block (the buffer overwritten since)."""
    rows = [f"{k / 100:.6f},0.01,-0.02,0.99,0.5,-0.25,0.125" for k in range(2000)]
    rows[1500] = rows[1500].replace(f"{1500 / 100:.6f}", "14.980000", 1)  # back from 14.990000
    path = tmp_path / "x.csv"
    path.write_bytes(csv_text(*rows).encode())
    expected = parse_bytes(csv_text(*rows).encode(), fast=False)
    assert expected == ("f.csv:1502: column time_s: strictly increasing time expected, got going back: "
                        "14.980000 after 14.990000 (line 1501)")  # fmt: skip
    bad_at = len(csv_text(*rows[:1500]).encode())  # a block that ends right before the bad line
    for size in (37, 1000, 4096, 65536, 1 << 22, bad_at, bad_at // 2, bad_at // 3):
        assert _read_blocks(path, size) == expected, size
    good = [f"{k / 100:.6f},0.01,-0.02,0.99,0.5,-0.25,0.125" for k in range(2000)]
    path.write_bytes(csv_text(*good).encode())
    assert same(_read_blocks(path, 777), parse_bytes(csv_text(*good).encode(), fast=False))
