"""A fixture's refusals said in the command line's words."""

from stackpress.refusal import in_cli_words


def test_protocol_commands_become_what_a_person_types():
    msg = "a profile is running (step 2 of 5): 'hold' would take the setpoint from it; 'profile_stop' first"
    said = in_cli_words("profile", msg, "stackpress hold")
    assert said == (
        "a profile is running (step 2 of 5): 'stackpress hold MPA' would take the setpoint from it; "
        "'stackpress profile stop' first"
    )
    assert in_cli_words("fault", "fixture is in fault (stall): acknowledge with 'ack' first", "x").endswith(
        "'stackpress ack' first"
    )


def test_a_lock_names_what_was_typed_and_leaves_other_quotes_alone():
    msg = "the fixture is locked (a test is running): 'set' changes pressure; 'unlock' first"
    said = in_cli_words("locked", msg, "stackpress config telemetry_period_ms")
    typed = "'stackpress config telemetry_period_ms'"
    assert said == "the fixture is locked (a test is running): %s waits until 'stackpress unlock'" % typed
    assert in_cli_words("type", "'mpa' must be a number in MPa, got 'x'", "stackpress hold") == (
        "'mpa' must be a number in MPa, got 'x'"
    )
