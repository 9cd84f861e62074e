"""From raw thigh IMU samples to the hip angle: calibration, then fusion."""

from .angle import HipAngleEstimator
from .calibration import Calibration, Calibrator

__all__ = ["Calibration", "Calibrator", "HipAngleEstimator"]
