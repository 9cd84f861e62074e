"""From raw thigh IMU samples to the hip angle: calibration, then fusion."""

from host.fusion.angle import HipAngleEstimator
from host.fusion.calibration import Calibration, Calibrator

__all__ = ["Calibration", "Calibrator", "HipAngleEstimator"]
