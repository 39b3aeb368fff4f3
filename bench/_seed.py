"""The seed notice, which the benchmarks (and the tests' labelled-question checks) measure by name:
its labelled questions are the tuning set, tests/data/questions_heldout.tsv the held-out one."""

from knowledge.store import NOTICES_DIR

SEED_DOC = "qingyuan-wlj-xuncha-2025"
SEED_QUESTIONS = NOTICES_DIR / SEED_DOC / "questions.tsv"
