"""The one place that wires model → index → answers → dialogue; the CLI and the server use it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from threadpoolctl import threadpool_limits

from bot.answer import Answerer
from bot.dialogue import Dialogue
from bot.remote import RemoteRasaDialogue
from index.embedding import Embedder
from index.search import Retriever


@dataclass
class Bot:
    """The objects a front end needs, built once."""

    embedder: Embedder
    retriever: Retriever
    answerer: Answerer
    dialogue: "Dialogue | RemoteRasaDialogue"
    settings: dict = field(default_factory=dict)
    store: object = None

    def renewed(self) -> "Bot":
        """A new bot (not loaded) on the same model and conversation store: the index, the
        notices and the NLU are read afresh, while conversations go on."""
        return build_bot(self.settings, embedder=self.embedder, store=self.store)

    def warm_up(self) -> None:
        """Load the model and the index (building it if missing or stale), then the NLU."""
        self.retriever.warm_up()
        self.answerer.warm_up()
        self.dialogue.warm_up()


def build_bot(config: dict | None = None, *, embedder: Embedder | None = None, store=None) -> Bot:
    """Build (not load) the bot from settings.

    :param config: optional keys ``EMBEDDING_MODEL``, ``LIBRARY_DIR``, ``INDEX_DIR``,
        ``SESSION_TTL`` (seconds), ``MAX_SESSIONS``, ``PROGRESS``, ``BOT_BACKEND`` (``embedded``,
        the default, or ``rasa`` to relay to ``RASA_URL``'s REST channel), ``ENDPOINTS`` (an
        ``endpoints.yml`` whose ``tracker_store`` says where conversations live; none: in
        memory) and ``REDIS_URL`` (Redis, when the endpoints name no store); unset keys fall
        back to the environment, then to defaults.
    :param embedder: a model to share (:meth:`Bot.renewed`); default: a new one from the settings.
    :param store: a conversation store to share; default: the one the settings name.
    :returns: a :class:`Bot`; call ``warm_up()`` before serving.
    """
    config = dict(config or {})
    # One BLAS thread per process. Requests are served by as many processes as there are cores
    # (gunicorn workers); OpenBLAS's own threads, spinning on the same cores for one matrix-vector
    # product a question (the labelled questions), made two processes three times slower. The
    # embedding engine keeps its own threads (EMBEDDING_THREADS).
    threadpool_limits(limits=1, user_api="blas")

    def setting(key: str, default=None):
        return config.get(key) if config.get(key) is not None else os.environ.get(key, default)

    embedder = embedder or Embedder(setting("EMBEDDING_MODEL"))
    library_dir = setting("LIBRARY_DIR")
    index_dir = setting("INDEX_DIR")
    retriever = Retriever(
        embedder,
        library_dir=Path(library_dir) if library_dir else None,
        build_dir=Path(index_dir) if index_dir else None,
        progress=bool(setting("PROGRESS", False)),
    )
    from bot.nlu import classifier_for
    from bot.scope import ScopePolicy

    classifier = classifier_for(retriever, embed_query=retriever.query_vector,
                                names_subject=lambda text: bool(retriever.specific_words(text)))
    answerer = Answerer(retriever, policy=ScopePolicy(classifier))
    backend = (setting("BOT_BACKEND", "embedded") or "embedded").lower()
    if backend == "rasa":
        from bot.remote import RemoteRasaDialogue

        dialogue = RemoteRasaDialogue(setting("RASA_URL", "http://localhost:5005"),
                                      timeout=float(setting("RASA_TIMEOUT", 30)))
    elif backend == "embedded":
        from bot.trackers import read_endpoints, tracker_store

        if store is None:
            store = tracker_store(read_endpoints(setting("ENDPOINTS")), ttl=float(setting("SESSION_TTL", 1800)),
                                  max_senders=int(setting("MAX_SESSIONS", 10000)), redis_url=setting("REDIS_URL"))
        dialogue = Dialogue(answerer, classifier=classifier, store=store)
    else:
        raise ValueError(f"BOT_BACKEND must be 'embedded' or 'rasa', got {backend!r}")
    return Bot(embedder, retriever, answerer, dialogue, settings=config, store=store)
