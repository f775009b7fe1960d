from glabella.clinical import overrides, safety


def test_expired_lot_and_vial_use_by_can_never_be_overridden() -> None:
    assert not overrides.can_override("expired-lot")
    assert not overrides.can_override("vial-use-by")
    assert "expiry" in overrides.why_not("expired-lot")


def test_dose_maximums_and_intervals_may_be_overridden_with_a_reason() -> None:
    for rule in ("cumulative-3-month", "session-max", "site-max", "min-interval", "paediatric-max"):
        assert overrides.can_override(rule)


def test_every_hard_rule_is_a_rule_the_engine_knows() -> None:
    assert set(safety.rule_ids()) >= overrides.HARD_RULES
