"""From the hip angle to reps: segmenter (where a rep is closed), measures, sets and flags."""

from .measure import measure_rep
from .segmenter import RepSegmenter
from .sets import group_sets, rep_flags

__all__ = ["RepSegmenter", "group_sets", "measure_rep", "rep_flags"]
