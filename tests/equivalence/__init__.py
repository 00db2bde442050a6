"""Equivalence of distilled SCMs with the DoWhy gcm models they come from.

Statistical tests in this folder assert `p > TEST_FAILURE_RATE`: each such assertion
fails by chance with at most this probability when the two sides agree. There are no
retries and no `@flaky`.
"""

TEST_FAILURE_RATE = 1e-4
