"""Importers on files written here in each app's published export format.

Each sample file carries a known motion (gravity along one axis, a known rotation rate), is
really written to disk and read back; the values must come back in g and deg/s.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from legrep.errors import InputError
from legrep.importers import parse_import_map, read_import

G = 9.80665
N = 200
RATE = 50.0
T = np.arange(N) / RATE
GYR_DPS = 30.0 * np.sin(2 * np.pi * 0.5 * T)  # about x
RAD = math.pi / 180


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def check(imp, acc_axis: int = 2, atol_dps: float = 0.05, first_s: float = 0.0) -> None:
    """``first_s``: recording time of the first accelerometer sample (imported times start at 0)."""
    b = imp.block
    assert len(b) >= N - 2
    assert np.allclose(b.acc_g[:, acc_axis], 1.0, atol=1e-3)
    assert np.allclose(b.gyr_dps[:, 0], np.interp(b.time_s + first_s, T, GYR_DPS), atol=atol_dps)
    assert b.time_s[0] == 0.0 and np.all(np.diff(b.time_s) > 0)


def test_phyphox_two_files(tmp_path: Path) -> None:
    acc = ['"Time (s)","Acceleration x (m/s^2)","Acceleration y (m/s^2)","Acceleration z (m/s^2)","Absolute acceleration (m/s^2)"']
    gyr = ['"Time (s)","Gyroscope x (rad/s)","Gyroscope y (rad/s)","Gyroscope z (rad/s)","Absolute (rad/s)"']
    for t, w in zip(T, GYR_DPS):
        acc.append(f"{t + 0.003:.6E},0.0,0.0,{G:.6E},{G:.6E}")
        gyr.append(f"{t:.6E},{w * RAD:.9E},0.0,0.0,{abs(w) * RAD:.6E}")
    imp = read_import([write(tmp_path, "Accelerometer.csv", "\n".join(acc)), write(tmp_path, "Gyroscope.csv", "\n".join(gyr))])
    assert imp.format == "phyphox" and any("interpolated" in n for n in imp.notes)
    check(imp, atol_dps=0.1, first_s=0.003)


def test_phyphox_linear_acceleration_refused(tmp_path: Path) -> None:
    p = write(tmp_path, "Linear.csv", '"Time (s)","Linear Acceleration x (m/s^2)","Linear Acceleration y (m/s^2)","Linear Acceleration z (m/s^2)"\n0,0,0,0\n')
    with pytest.raises(InputError, match="gravity removed"):
        read_import([p])


def test_sensor_logger(tmp_path: Path) -> None:
    base = 1_700_000_000_000_000_000
    acc = ["time,seconds_elapsed,z,y,x"]
    gyr = ["time,seconds_elapsed,z,y,x"]
    for t, w in zip(T, GYR_DPS):
        ns = base + int(round(t * 1e9))
        acc.append(f"{ns},{t:.4f},{G},0.0,0.0")
        gyr.append(f"{ns},{t:.4f},0.0,0.0,{w * RAD:.9f}")
    imp = read_import([write(tmp_path, "TotalAcceleration.csv", "\n".join(acc)), write(tmp_path, "Gyroscope.csv", "\n".join(gyr))])
    assert imp.format == "sensor-logger"
    check(imp)
    with pytest.raises(InputError, match="TotalAcceleration"):
        read_import([write(tmp_path, "Accelerometer.csv", "\n".join(acc)), tmp_path / "Gyroscope.csv"])


def test_movella_dot_app_export_with_preamble_and_wrap(tmp_path: Path) -> None:
    lines = ["DeviceTag:,Movella DOT", "FirmwareVersion:,2.6.0", "",
             "PacketCounter,SampleTimeFine,Quat_W,Quat_X,Quat_Y,Quat_Z,Acc_X,Acc_Y,Acc_Z,Gyr_X,Gyr_Y,Gyr_Z"]
    start = 2**32 - 1_000_000  # wraps after one second
    for k, (t, w) in enumerate(zip(T, GYR_DPS)):
        stf = (start + int(round(t * 1e6))) % 2**32
        lines.append(f"{k},{stf},1,0,0,0,0.0,0.0,{G},{w:.6f},0.0,0.0")
    imp = read_import([write(tmp_path, "dot.csv", "\n".join(lines))])
    assert imp.format == "movella-dot"
    check(imp)
    assert imp.block.time_s[-1] == pytest.approx(T[-1])


def test_metabase_two_files(tmp_path: Path) -> None:
    epoch0 = 1_600_000_000_000
    acc = ["epoch (ms),time (-13:00),elapsed (s),x-axis (g),y-axis (g),z-axis (g)"]
    gyr = ["epoch (ms),time (-13:00),elapsed (s),x-axis (deg/s),y-axis (deg/s),z-axis (deg/s)"]
    for t, w in zip(T, GYR_DPS):
        ms = epoch0 + int(round(t * 1000))
        acc.append(f"{ms},2020-09-13T12:26:40.000,{t:.3f},0.000,1.000,0.000")
        gyr.append(f"{ms},2020-09-13T12:26:40.000,{t:.3f},{w:.3f},0.000,0.000")
    imp = read_import([write(tmp_path, "MetaWear_Accelerometer.csv", "\n".join(acc)), write(tmp_path, "MetaWear_Gyroscope.csv", "\n".join(gyr))])
    assert imp.format == "metabase"
    check(imp, acc_axis=1, atol_dps=0.01)


def test_polar_sensor_logger(tmp_path: Path) -> None:
    ns0 = 599_628_000_000_000_000
    acc = ["Phone timestamp;sensor timestamp [ns];X [mg];Y [mg];Z [mg]"]
    gyr = ["Phone timestamp;sensor timestamp [ns];X [dps];Y [dps];Z [dps]"]
    for t, w in zip(T, GYR_DPS):
        ns = ns0 + int(round(t * 1e9))
        acc.append(f"2026-06-10T22:00:00.000;{ns};0;0;1000")
        gyr.append(f"2026-06-10T22:00:00.000;{ns};{w:.4f};0.0;0.0")
    imp = read_import([write(tmp_path, "Polar_Sense_ACC.txt", "\n".join(acc)), write(tmp_path, "Polar_Sense_GYRO.txt", "\n".join(gyr))])
    assert imp.format == "polar-sensor-logger"
    check(imp)


def test_import_map_and_bad_value(tmp_path: Path) -> None:
    lines = ["t_ms;ax;ay;az;wx;wy;wz"]
    for t, w in zip(T, GYR_DPS):
        lines.append(f"{t * 1000:.1f};0;0;{G};{w * RAD:.9f};0;0")
    p = write(tmp_path, "custom.csv", "\n".join(lines))
    with pytest.raises(InputError, match="--import-map"):
        read_import([p])
    mapping = "time=t_ms:ms,acc_x=ax:mps2,acc_y=ay:mps2,acc_z=az:mps2,gyr_x=wx:rads,gyr_y=wy:rads,gyr_z=wz:rads"
    imp = read_import([p], mapping)
    assert imp.format == "mapped"
    check(imp)
    bad = lines.copy()
    bad[7] = "0.12;0;zero;0;0;0;0"
    with pytest.raises(InputError, match=r"custom2.csv:8: column 'ay': a number expected, got 'zero'"):
        read_import([write(tmp_path, "custom2.csv", "\n".join(bad))], mapping)


def test_import_map_errors() -> None:
    with pytest.raises(InputError, match="unit after ':'"):
        parse_import_map("time=t:hours")
    with pytest.raises(InputError, match="mappings for acc_x"):
        parse_import_map("time=t:s")


def test_gravity_free_data_refused(tmp_path: Path) -> None:
    lines = ["time_ms,a1,a2,a3,g1,g2,g3"] + [f"{k * 20},0.01,0.02,0.0,0,0,0" for k in range(50)]
    p = write(tmp_path, "nog.csv", "\n".join(lines))
    with pytest.raises(InputError, match="including gravity"):
        read_import([p], "time=time_ms:ms,acc_x=a1:g,acc_y=a2:g,acc_z=a3:g,gyr_x=g1:dps,gyr_y=g2:dps,gyr_z=g3:dps")


def test_legrep_csv_passthrough(tmp_path: Path) -> None:
    lines = ["time_s,acc_x_g,acc_y_g,acc_z_g,gyr_x_dps,gyr_y_dps,gyr_z_dps"]
    lines += [f"{t:.4f},0,0,1,{w:.5f},0,0" for t, w in zip(T, GYR_DPS)]
    imp = read_import([write(tmp_path, "legrep.csv", "\n".join(lines) + "\n")])
    assert imp.format == "legrep" and len(imp.block) == N


def test_missing_file() -> None:
    with pytest.raises(InputError, match="file not found"):
        read_import(["/nonexistent/file.csv"])


def test_header_only_and_huge_fields_are_one_line(tmp_path) -> None:
    from legrep.cli import main
    from legrep.errors import InputError
    from legrep.importers import read_import

    header_only = tmp_path / "Accelerometer.csv"
    header_only.write_text('"Time (s)","Acceleration x (m/s^2)","Acceleration y (m/s^2)","Acceleration z (m/s^2)"\n')
    with pytest.raises(InputError, match="data rows under the header"):
        read_import([header_only])
    huge = tmp_path / "huge.csv"
    huge.write_text('"Time (s)","Acceleration x (m/s^2)"\n0,' + "9" * 300_000 + "\n")
    with pytest.raises(InputError, match="huge.csv:2: a CSV line"):
        read_import([huge])
    assert main(["analyze", "--left", str(header_only), "--no-history"]) == 2
