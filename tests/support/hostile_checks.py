"""The checks every hostile-values family runs over its report: one class, inherited by each
test module (tests/integration/test_hostile_{admin,models,chat}.py), which supplies `report`."""

from __future__ import annotations

from tests.support.hostile_app import GIB, Report

RSS_BOUND = 2 * GIB


class HostileFamilyChecks:
    """Subclass as `TestSomething(HostileFamilyChecks)` beside a `report` fixture."""

    def test_the_app_survives_the_batch(self, report: Report) -> None:
        assert not report.matrix.app_died, f"the app died after {report.matrix.app_died}"

    def test_every_answer_is_a_result_or_a_sentence(self, report: Report) -> None:
        assert report.matrix.attempts
        problems = report.matrix.problems()
        assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems[:40])

    def test_no_hostile_value_ends_in_an_unexpected_server_error(self, report: Report) -> None:
        # Each value should be refused by validation with a sentence naming it; a logged
        # reference means an exception nobody expected (readable, but a validation gap).
        unexpected = report.matrix.server_errors()
        assert not unexpected, f"{len(unexpected)} unexpected error(s):\n" + "\n".join(unexpected)

    def test_another_user_is_served_promptly_after_the_batch(self, report: Report) -> None:
        assert report.bystander_ok, "the bystander could not sign in and get the header"
        assert report.bystander_s < 2.0, f"sign-in and header took {report.bystander_s:.1f} s"

    def test_memory_stays_bounded(self, report: Report) -> None:
        assert not report.killed, "the watchdog killed the app: resident memory passed 3 GiB"
        assert report.rss_max < RSS_BOUND, f"peak RSS {report.rss_max / GIB:.2f} GiB"

    def test_the_database_is_intact_and_old_rows_are_unchanged(self, report: Report) -> None:
        assert report.integrity == []
        assert report.changed_rows == []
