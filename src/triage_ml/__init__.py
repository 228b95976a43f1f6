"""triage-ml: triage for social customer care.

Three heads over one sentence encoder: ``actionable`` (vs noise), ``priority_tier`` (1 or 2, for
actionable messages) and ``crisis`` (served as ``crisis_risk``). See docs/taxonomy.md for the labels.
"""

__version__ = "0.1.0"
