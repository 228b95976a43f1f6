"""gate.decide: every check, pass and fail, the tolerance edges, and the first model (no champion)."""

from __future__ import annotations

import pytest

from triage_ml.pipeline.config import TrainConfig
from triage_ml.pipeline.gate import Check, decide
from triage_ml.taxonomy import HEADS

CONFIG = TrainConfig.from_dict({"promotion_tolerance": 0.25, "gate": {"crisis_recall_floor": 0.75}})
SMOKE_OK = Check("smoke", True, "smoke test: fine", 12.0)
SMOKE_BAD = Check("smoke", False, "smoke test: does not load")


def gold(f1: float = 0.5, recall: float = 1.0, crises: float = 4.0, **per_head: float) -> dict[str, dict[str, float]]:
    """Per-head gold metrics as ``evaluate`` gives them: macro F1 per head; crisis also its recall."""
    out = {head: {"macro_f1": per_head.get(head, f1)} for head in HEADS}
    out["crisis"].update({"recall_at_threshold": recall, "threshold": 0.375, "crisis.support": crises})
    return out


def folds(f1: float = 0.5, **per_head: float) -> dict[str, float]:
    return {head: per_head.get(head, f1) for head in HEADS}


def with_champion(**kw):
    """A decision against champion v3 whose every metric is 0.5; ``kw`` replaces the challenger's side."""
    args = {"challenger_gold": gold(), "challenger_folds": folds(), "challenger_real": gold(), "smoke": SMOKE_OK}
    args.update(kw)
    return decide(CONFIG, args["smoke"], args["challenger_gold"], gold(), args["challenger_folds"], folds(), "3",
                  challenger_real=args["challenger_real"], champion_real=gold())


def failed(decision) -> list[str]:
    return [c.name for c in decision.checks if not c.passed]


# -- the first model: nothing to protect --------------------------------------------------------------------
def test_the_first_model_is_promoted_on_the_smoke_test_alone():
    decision = decide(CONFIG, SMOKE_OK, gold(), None, folds(), None, None)
    assert decision.promote is True
    assert [c.name for c in decision.checks] == ["smoke", "gold.crisis.recall"]
    assert decision.reasons == ["no champion yet"]
    assert decision.summary() == "promoted to champion: no champion yet"


def test_the_first_model_is_promoted_with_its_recall_shortfall_reported():
    decision = decide(CONFIG, SMOKE_OK, gold(recall=0.5), None, folds(), None, None)
    assert decision.promote is True and failed(decision) == ["gold.crisis.recall"]
    assert decision.reasons == ["no champion yet", "gold crisis recall 0.500 at threshold 0.375 (floor 0.75; "
                                "4 crises in the gold set)"]


def test_the_first_model_failing_its_smoke_test_is_refused():
    decision = decide(CONFIG, SMOKE_BAD, gold(), None, folds(), None, None)
    assert decision.promote is False
    assert decision.reasons == ["smoke test: does not load"]
    assert decision.summary() == "kept as challenger: smoke test: does not load"


def test_without_a_champion_version_no_head_is_compared():
    """Champion metrics without a champion version (none registered) add no per-head checks."""
    decision = decide(CONFIG, SMOKE_OK, gold(0.0), gold(1.0), folds(0.0), folds(1.0), None,
                      challenger_real=gold(0.0), champion_real=gold(1.0))
    assert decision.promote is True and [c.name for c in decision.checks] == ["smoke", "gold.crisis.recall"]


# -- crisis recall ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("recall", "passed"), [(0.75, True), (0.7499, False), (1.0, True), (0.0, False)])
def test_crisis_recall_floor_edge(recall, passed):
    decision = with_champion(challenger_gold=gold(recall=recall))
    [check] = [c for c in decision.checks if c.name == "gold.crisis.recall"]
    assert (check.passed, check.challenger, check.champion) == (passed, recall, 1.0)
    assert decision.promote is passed


def test_a_gold_set_without_crises_skips_the_recall_floor_with_a_note():
    note = "the gold set holds no crisis: the recall floor was not checked"
    for challenger in (gold(recall=0.0, crises=0.0), {h: m for h, m in gold().items() if h != "crisis"}):
        decision = decide(CONFIG, SMOKE_OK, challenger, None, folds(), None, None)
        assert "gold.crisis.recall" not in [c.name for c in decision.checks]
        assert decision.notes == [note] and decision.reasons == ["no champion yet", note]


def test_the_recall_check_names_no_champion_value_without_champion_metrics():
    decision = decide(CONFIG, SMOKE_OK, gold(recall=0.8), None, folds(), None, None)
    assert decision.checks[1].champion is None and decision.checks[1].challenger == 0.8


# -- against a champion -------------------------------------------------------------------------------------
def test_every_check_passes_against_the_champion():
    decision = with_champion()
    assert decision.promote is True
    assert [c.name for c in decision.checks] == ["smoke", "gold.crisis.recall",
                                                 *[f"{k}.{h}.macro_f1" for k in ("gold", "folds", "real_test")
                                                   for h in HEADS]]
    assert decision.reasons == ["every check passed against v3 (11 checks)"]
    assert decision.to_dict()["champion_version"] == "3" and len(decision.to_dict()["checks"]) == 11


def test_a_failed_smoke_test_refuses_even_when_every_metric_passes():
    decision = with_champion(smoke=SMOKE_BAD)
    assert decision.promote is False and decision.reasons == ["smoke test: does not load"]


def test_crisis_recall_below_the_floor_refuses_against_a_champion():
    decision = with_champion(challenger_gold=gold(recall=0.5))
    assert decision.promote is False and failed(decision) == ["gold.crisis.recall"]


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("kind", ["gold", "folds", "real_test"])
def test_each_head_loss_beyond_tolerance_refuses_naming_that_check(kind, head):
    worse = {"gold": {"challenger_gold": gold(**{head: 0.125})}, "folds": {"challenger_folds": folds(**{head: 0.125})},
             "real_test": {"challenger_real": gold(**{head: 0.125})}}[kind]
    decision = with_champion(**worse)
    assert decision.promote is False and failed(decision) == [f"{kind}.{head}.macro_f1"]
    assert decision.reasons == [f"{kind} {head} macro F1 0.1250 vs champion v3 0.5000 (-0.3750; tolerance 0.25)"]
    [check] = [c for c in decision.checks if not c.passed]
    assert (check.challenger, check.champion) == (0.125, 0.5)


@pytest.mark.parametrize(("challenger", "passed"), [(0.25, True), (0.2499, False), (0.875, True), (0.5, True)])
def test_tolerance_edge_with_exact_binary_values(challenger, passed):
    """A loss of exactly ``promotion_tolerance`` passes; a hair more fails; a gain always passes."""
    decision = with_champion(challenger_folds=folds(actionable=challenger))
    [check] = [c for c in decision.checks if c.name == "folds.actionable.macro_f1"]
    assert check.passed is passed and decision.promote is passed


def test_zero_tolerance_refuses_any_loss_and_accepts_a_tie():
    config = TrainConfig.from_dict({"promotion_tolerance": 0.0, "gate": {"crisis_recall_floor": 0.75}})
    tie = decide(config, SMOKE_OK, gold(), gold(), folds(), folds(), "3")
    loss = decide(config, SMOKE_OK, gold(), gold(), folds(actionable=0.4999), folds(), "3")
    assert tie.promote is True and loss.promote is False
    assert failed(loss) == ["folds.actionable.macro_f1"]


def test_a_loss_of_exactly_the_tolerance_in_decimal_passes():
    config = TrainConfig.from_dict({"promotion_tolerance": 0.01})
    decision = decide(config, SMOKE_OK, gold(), gold(), folds(actionable=0.79), folds(actionable=0.80), "3")
    assert decision.promote is True, decision.reasons


def test_real_test_is_compared_only_when_both_sides_have_it():
    one_sided = decide(CONFIG, SMOKE_OK, gold(), gold(), folds(), folds(), "3", challenger_real=gold(0.0))
    assert not [c for c in one_sided.checks if c.name.startswith("real_test.")] and one_sided.promote is True


def test_a_head_missing_from_the_champions_gold_is_not_compared():
    champion = {h: m for h, m in gold().items() if h != "priority_tier"}
    decision = decide(CONFIG, SMOKE_OK, gold(priority_tier=0.0), champion, folds(), folds(), "3")
    assert "gold.priority_tier.macro_f1" not in [c.name for c in decision.checks] and decision.promote is True


def test_no_champion_folds_means_no_fold_checks():
    decision = decide(CONFIG, SMOKE_OK, gold(), gold(), folds(0.0), None, "3")
    assert not [c for c in decision.checks if c.name.startswith("folds.")] and decision.promote is True


def test_several_failures_are_all_reported_in_check_order():
    decision = with_champion(smoke=SMOKE_BAD, challenger_gold=gold(recall=0.5, crisis=0.125),
                             challenger_folds=folds(priority_tier=0.0))
    assert failed(decision) == ["smoke", "gold.crisis.recall", "gold.crisis.macro_f1", "folds.priority_tier.macro_f1"]
    assert len(decision.reasons) == 4 and decision.promote is False
