"""Paper presets, training, evaluation reports and figures (DESIGN.md, "Paper presets" to "Plots")."""

from agegender_tf.experiments.presets import PRESETS, Preset, apply_overrides, get_preset, smoke_version

__all__ = ["PRESETS", "Preset", "apply_overrides", "get_preset", "smoke_version"]
