"""Synthetic device telemetry with planted, labelled fraud scenarios.

``generate(out, SynthConfig(...))`` writes NDJSON batches matching the data contract under
``out/telemetry``, fraud-team labels under ``out/labels`` and the ground truth in
``out/truth/scenarios.ndjson``; the same config always gives byte-identical files.
"""

from devicerisk.synth.config import FRAUD_SCENARIOS, LOOKALIKE_TAGS, SynthConfig, SynthResult
from devicerisk.synth.generator import generate

__all__ = ["FRAUD_SCENARIOS", "LOOKALIKE_TAGS", "SynthConfig", "SynthResult", "generate"]
