"""The real-data benchmark's variants: config keys overridden by name, typos refused."""

import pytest

from triage_ml.benchmark.real import override, parse_variant
from triage_ml.errors import ConfigError
from triage_ml.pipeline.config import TrainConfig


def test_variants_override_dotted_keys():
    base = TrainConfig.from_yaml("training/configs/default.yaml")
    assert base.real_data is not None and base.thresholds["crisis"].policy == "best_f1"
    name, changes = parse_variant("seed-only:real_data=null,finetune.enabled=false,real_data.weight=2")
    assert name == "seed-only" and changes == {"real_data": None, "finetune.enabled": False, "real_data.weight": 2}
    seed_only = override(base, {"real_data": None, "finetune.enabled": False})
    assert seed_only.real_data is None and not seed_only.finetune.enabled
    again = override(seed_only, {"real_data": True})
    assert again.real_data is not None and again.real_data.labels == "data/real/xci_labels.csv"
    assert override(base, {"real_data.weight": 2}).real_data.weight == 2
    assert parse_variant("default:") == ("default", {})


@pytest.mark.parametrize(("spec", "fragment"), [(":a=1", "give it a name"), ("x:weight", "not key=value"),
                                               ("x:cv_folds=one", "'cv_folds'")])
def test_bad_variants_are_refused(spec, fragment):
    with pytest.raises(ConfigError, match=fragment):
        override(TrainConfig(), parse_variant(spec)[1])
