"""Consistency of the Rasa 3.x project in bot/ — what ``rasa data validate`` would catch, and more.

Fast and model-free: it reads the YAML files as Rasa 3.x documents them (domain, NLU, rules,
stories, test stories, config, endpoints, credentials) and checks them against each other and
against ``bot/constants.py``. Whether the custom actions exist on the action server is tested
with bot/actions/, not here.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import yaml

from bot import constants
from bench._seed import SEED_QUESTIONS

ROOT = Path(__file__).resolve().parents[2]
BOT = ROOT / "bot"
DATA = ROOT / "tests" / "data"

YAML_FILES = {
    "config": BOT / "config.yml",
    "domain": BOT / "domain.yml",
    "nlu": BOT / "data" / "nlu.yml",
    "rules": BOT / "data" / "rules.yml",
    "stories": BOT / "data" / "stories.yml",
    "test_stories": BOT / "tests" / "test_stories.yml",
    "endpoints": BOT / "endpoints.yml",
    "credentials": BOT / "credentials.yml",
}
VERSIONED = ("domain", "nlu", "rules", "stories", "test_stories")
TRAINING_VERSION = "3.1"

# Rasa 3.x built-ins that may be used without being declared in domain.yml.
RASA_DEFAULT_INTENTS = {"restart", "back", "out_of_scope", "session_start", "nlu_fallback"}
RASA_DEFAULT_ACTIONS = {
    "action_listen",
    "action_restart",
    "action_session_start",
    "action_default_fallback",
    "action_deactivate_loop",
    "action_revert_fallback_events",
    "action_default_ask_affirmation",
    "action_default_ask_rephrase",
    "action_two_stage_fallback",
    "action_unlikely_intent",
    "action_back",
    "action_extract_slots",
}
# action_default_fallback utters this response; it is used whenever the fallback action is.
RESPONSES_USED_BY_DEFAULT_ACTIONS = {"action_default_fallback": {"utter_default"}}

# Keys Rasa 3.x accepts in a rule/story step, and at the top of a rule/story.
STEP_KEYS = {"intent", "action", "slot_was_set", "active_loop", "entities", "user", "checkpoint", "or"}
RULE_KEYS = {"rule", "steps", "condition", "conversation_start", "wait_for_user_input", "metadata"}
STORY_KEYS = {"story", "steps", "metadata"}
NLU_KINDS = {"intent", "synonym", "regex", "lookup"}

# What each intent must trigger (rules.yml), from the shared names.
EXPECTED_RULES = {
    constants.INTENT_GREET: constants.UTTER_GREET,
    constants.INTENT_GOODBYE: constants.UTTER_GOODBYE,
    constants.INTENT_THANK: constants.UTTER_THANK,
    constants.INTENT_HELP: constants.UTTER_HELP,
    constants.INTENT_ASK_CONTACT: constants.ACTION_CONTACT,
    constants.INTENT_ASK_OVERVIEW: constants.ACTION_OVERVIEW,
    constants.INTENT_ASK_ITEM_BY_NUMBER: constants.ACTION_ITEM_BY_NUMBER,
    constants.INTENT_ASK_NOTICE: constants.ACTION_ANSWER_FROM_NOTICE,
    # the answer action checks the notice before it declines
    constants.INTENT_OUT_OF_SCOPE: constants.ACTION_ANSWER_FROM_NOTICE,
    constants.INTENT_NLU_FALLBACK: constants.ACTION_ANSWER_FROM_NOTICE,
    constants.INTENT_ASK_FOLLOW_UP: constants.ACTION_ANSWER_FROM_NOTICE,
    constants.INTENT_AFFIRM: constants.UTTER_ACKNOWLEDGE,
    constants.INTENT_BOT_CHALLENGE: constants.UTTER_IAMABOT,
    constants.INTENT_CHITCHAT: constants.UTTER_CHITCHAT,
    constants.INTENT_COMPLAIN: constants.ACTION_COMPLAINT,
    constants.INTENT_REQUEST_HUMAN: constants.ACTION_HUMAN_HANDOFF,
    constants.INTENT_NOT_UNDERSTOOD: constants.UTTER_REPHRASE,
}
# Slots that are not text, and the template variables an action fills (utter_message(response=…, **fields)).
SLOT_TYPES = {constants.SLOT_LAST_QUOTED: "list", constants.SLOT_DECLINED: "bool"}
TEMPLATE_VARIABLES = {constants.UTTER_COMPLAINT: {"channels", "issuer"}, constants.UTTER_HUMAN_HANDOFF: {"channels"},
                      constants.UTTER_OUT_OF_SCOPE: {"title", "contact"},
                      # slots (Rasa fills a response's {slot} from the tracker), set by the notice actions
                      constants.UTTER_HELP: {constants.SLOT_EXAMPLE_QUESTION, constants.SLOT_EXAMPLE_ITEM},
                      constants.UTTER_DEFAULT: {constants.SLOT_EXAMPLE_QUESTION, constants.SLOT_EXAMPLE_ITEM}}
# Responses a custom action utters (dispatcher.utter_message(response=…)).
RESPONSES_USED_BY_CUSTOM_ACTIONS = {
    constants.ACTION_ANSWER_FROM_NOTICE: {constants.UTTER_OUT_OF_SCOPE},
    constants.ACTION_COMPLAINT: {constants.UTTER_COMPLAINT},
    constants.ACTION_HUMAN_HANDOFF: {constants.UTTER_HUMAN_HANDOFF},
}

MIN_EXAMPLES = {
    constants.INTENT_GREET: 15,
    constants.INTENT_GOODBYE: 15,
    constants.INTENT_THANK: 15,
    constants.INTENT_HELP: 15,
    constants.INTENT_ASK_CONTACT: 20,
    constants.INTENT_ASK_OVERVIEW: 20,
    constants.INTENT_ASK_ITEM_BY_NUMBER: 20,
    constants.INTENT_ASK_NOTICE: 60,
    constants.INTENT_OUT_OF_SCOPE: 40,
    constants.INTENT_ASK_FOLLOW_UP: 15,
    constants.INTENT_AFFIRM: 15,
    constants.INTENT_BOT_CHALLENGE: 12,
    constants.INTENT_CHITCHAT: 15,
    constants.INTENT_COMPLAIN: 15,
    constants.INTENT_REQUEST_HUMAN: 12,
    constants.INTENT_NOT_UNDERSTOOD: 12,
}

EXPECTED_PIPELINE = [
    "JiebaTokenizer",
    "RegexFeaturizer",
    "LexicalSyntacticFeaturizer",
    "CountVectorsFeaturizer",
    "CountVectorsFeaturizer",
    "DIETClassifier",
    "EntitySynonymMapper",
    "FallbackClassifier",
]
EXPECTED_POLICIES = ["MemoizationPolicy", "RulePolicy", "TEDPolicy"]
# Numbered items in part 二 of knowledge/notices/qingyuan-wlj-xuncha-2025/notice.txt.
ITEMS_IN_NOTICE = 28

# [text](entity), [text](entity:value), [text]{"entity": ...}
_ANNOTATION_RE = re.compile(r"\[(?P<text>[^\[\]]+)\](?:\((?P<short>[^()]+)\)|(?P<json>\{[^{}]*\}))")
_CN_NUMBER_RE = re.compile(r"^[一二三四五六七八九十]{1,3}$")
_CN_DIGITS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}


# ---------------------------------------------------------------- helpers


def _load(name: str):
    with open(YAML_FILES[name], encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _examples(block: str) -> list[str]:
    """The ``- example`` lines of an NLU ``examples: |`` block."""
    lines = [line.strip() for line in block.splitlines() if line.strip()]
    bad = [line for line in lines if not line.startswith("- ")]
    assert not bad, f"NLU example lines must start with '- ': {bad}"
    return [line[2:].strip() for line in lines]


def _annotations(example: str) -> list[tuple[str, str]]:
    """``[(text, entity)]`` for every annotation in a training example."""
    out = []
    for match in _ANNOTATION_RE.finditer(example):
        if match.group("short"):
            entity = match.group("short").split(":", 1)[0].strip()
        else:
            entity = yaml.safe_load(match.group("json")).get("entity", "")
        out.append((match.group("text"), entity))
    return out


def _plain(example: str) -> str:
    """The example as the user types it: annotations replaced by their text."""
    return _ANNOTATION_RE.sub(lambda m: m.group("text"), example)


def _normalise(text: str) -> str:
    """Case, width, spaces and punctuation folded, to compare examples and questions."""
    text = unicodedata.normalize("NFKC", _plain(text)).lower()
    return "".join(ch for ch in text if unicodedata.category(ch)[0] not in "PZS")


def _cn_to_int(numeral: str) -> int:
    if "十" not in numeral:
        return _CN_DIGITS[numeral]
    tens, _, ones = numeral.partition("十")
    return (_CN_DIGITS[tens] if tens else 1) * 10 + (_CN_DIGITS[ones] if ones else 0)


def _names(entries) -> list[str]:
    """Names from a domain list whose entries are strings or one-key dicts."""
    return [next(iter(e)) if isinstance(e, dict) else e for e in entries]


def _notice_nlu() -> list[tuple[Path, dict]]:
    """Each notice's own NLU file (knowledge/notices/<doc>/nlu.yml), parsed."""
    from knowledge.store import nlu_files

    return [(path, yaml.safe_load(path.read_text(encoding="utf-8"))) for path in nlu_files()]


def _nlu_by_intent() -> dict[str, list[str]]:
    """Every intent's examples, as ``rasa train --data bot/data knowledge/notices/*/nlu.yml`` reads them."""
    out: dict[str, list[str]] = defaultdict(list)
    for data in (_load("nlu"), *(d for _, d in _notice_nlu())):
        for entry in data["nlu"]:
            if "intent" in entry:
                out[entry["intent"]].extend(_examples(entry["examples"]))
    return dict(out)


def test_each_notices_nlu_file_is_rasa_training_data_of_questions_about_it():
    assert _notice_nlu(), "the seed notice keeps its own ask_notice examples in its folder"
    for path, data in _notice_nlu():
        assert str(data.get("version")) == TRAINING_VERSION, path
        assert set(data) <= {"version", "nlu"}, path
        intents = {entry.get("intent") for entry in data["nlu"]}
        # a notice's topics are asked about; the other intents belong to the genre's file
        assert intents == {constants.INTENT_ASK_NOTICE}, (path, intents)


def test_the_genres_nlu_file_names_no_notices_places_or_issuer():
    from bot.answer import _issuer_name, _issuer_place
    from knowledge.store import load_library

    library = load_library()
    text = YAML_FILES["nlu"].read_text(encoding="utf-8")
    for doc, meta in library.meta.items():
        issuer = _issuer_name(meta.issuer)
        named = [p for p in (*meta.area, issuer, _issuer_place(issuer)) if len(p) >= 2 and p in text]
        assert not named, f"bot/data/nlu.yml names {doc}'s {named}: move those examples to its nlu.yml"


def _conversations() -> list[tuple[str, str, dict]]:
    """``(file, name, rule_or_story)`` for every rule, story and test story."""
    out = []
    for name, key, label in (("rules", "rules", "rule"), ("stories", "stories", "story"),
                             ("test_stories", "stories", "story")):
        for entry in _load(name).get(key) or []:
            out.append((name, entry.get(label, "?"), entry))
    return out


def _steps():
    """``(file, conversation, step)`` for every step, flattening ``or`` alternatives."""
    for file, conv, entry in _conversations():
        for step in entry.get("steps") or []:
            if "or" in step:
                for alternative in step["or"]:
                    yield file, conv, alternative
            else:
                yield file, conv, step


def _heldout_texts() -> list[str]:
    texts = []
    for path in (SEED_QUESTIONS, DATA / "questions_heldout.tsv"):
        with open(path, encoding="utf-8", newline="") as handle:
            texts += [row["question"] for row in csv.DictReader(handle, delimiter="\t")]
    with open(DATA / "intents_heldout.tsv", encoding="utf-8", newline="") as handle:
        texts += [row["text"] for row in csv.DictReader(handle, delimiter="\t")]
    return texts


# ---------------------------------------------------------------- files and versions


@pytest.mark.parametrize("name", sorted(YAML_FILES))
def test_yaml_parses_to_a_mapping(name):
    document = _load(name)
    assert isinstance(document, dict), f"{YAML_FILES[name].relative_to(ROOT)} is not a YAML mapping"


@pytest.mark.parametrize("name", VERSIONED)
def test_training_format_version(name):
    assert _load(name).get("version") == TRAINING_VERSION, (
        f"{YAML_FILES[name].relative_to(ROOT)} needs version: \"{TRAINING_VERSION}\" (a string)"
    )


# ---------------------------------------------------------------- domain == constants


def test_domain_intents_equal_constants():
    assert tuple(_names(_load("domain")["intents"])) == constants.INTENTS


def test_nlu_fallback_is_not_declared_as_intent():
    assert constants.INTENT_NLU_FALLBACK not in _names(_load("domain")["intents"]), (
        "nlu_fallback is a Rasa default intent; handle it with a rule, do not declare it"
    )


def test_domain_entities_equal_constants():
    assert _names(_load("domain")["entities"]) == [constants.ENTITY_ITEM_NUMBER]


def test_domain_slots_equal_constants():
    assert tuple(_load("domain")["slots"]) == constants.SLOTS


def test_domain_responses_equal_constants():
    assert tuple(_load("domain")["responses"]) == constants.RESPONSES


def test_domain_actions_equal_constants():
    assert tuple(_names(_load("domain")["actions"])) == constants.CUSTOM_ACTIONS


@pytest.mark.parametrize("slot", constants.SLOTS)
def test_slot_definition(slot):
    spec = _load("domain")["slots"][slot]
    kind = SLOT_TYPES.get(slot, "text")
    assert spec.get("type") == kind, f"slot {slot}: type must be {kind}, got {spec.get('type')!r}"
    assert spec.get("influence_conversation") is False, f"slot {slot}: influence_conversation must be false"
    expected = (
        [{"type": "from_entity", "entity": constants.ENTITY_ITEM_NUMBER}]
        if slot == constants.SLOT_ITEM_NUMBER
        else [{"type": "custom"}]
    )
    assert spec.get("mappings") == expected, f"slot {slot}: mappings {spec.get('mappings')!r} != {expected!r}"


@pytest.mark.parametrize("response", constants.RESPONSES)
def test_response_has_chinese_text(response):
    variations = _load("domain")["responses"][response]
    assert isinstance(variations, list) and variations, f"{response}: no variations"
    for variation in variations:
        text = variation.get("text", "")
        assert re.search(r"[\u4e00-\u9fff]", text), f"{response}: variation without Chinese text: {text!r}"
        variables = set(re.findall(r"\{(\w+)\}", text))
        allowed = TEMPLATE_VARIABLES.get(response, set())
        assert variables <= allowed, f"{response}: template variables {variables - allowed} (allowed: {allowed})"


def test_out_of_scope_response_gives_the_notice_contact():
    """The decline names the notice and its contact, filled in from the notice, never a literal."""
    for variation in _load("domain")["responses"][constants.UTTER_OUT_OF_SCOPE]:
        assert "{title}" in variation["text"] and "{contact}" in variation["text"]
        assert "0763" not in variation["text"]


def test_session_config():
    assert _load("domain")["session_config"] == {
        "session_expiration_time": 30,
        "carry_over_slots_to_new_session": True,
    }


# ---------------------------------------------------------------- NLU


def test_nlu_entries_have_one_kind_and_examples():
    for index, entry in enumerate(_load("nlu")["nlu"]):
        kinds = NLU_KINDS & set(entry)
        assert len(kinds) == 1, f"nlu entry #{index} must have exactly one of {sorted(NLU_KINDS)}: {entry!r}"
        assert set(entry) <= NLU_KINDS | {"examples", "metadata"}, f"nlu entry #{index}: unknown keys {entry!r}"
        assert isinstance(entry.get("examples"), str), f"nlu entry #{index} needs an 'examples: |' block"


def test_nlu_intents_are_declared():
    undeclared = set(_nlu_by_intent()) - set(constants.INTENTS)
    assert not undeclared, f"intents with NLU examples but not in domain.yml: {sorted(undeclared)}"


@pytest.mark.parametrize("intent", constants.INTENTS)
def test_intent_has_enough_examples(intent):
    examples = _nlu_by_intent().get(intent, [])
    assert len(examples) >= MIN_EXAMPLES[intent], (
        f"{intent}: {len(examples)} NLU examples, need at least {MIN_EXAMPLES[intent]}"
    )


def test_nlu_entity_annotations_parse_and_are_declared():
    entities = set(_names(_load("domain")["entities"]))
    for intent, examples in _nlu_by_intent().items():
        for example in examples:
            for text, entity in _annotations(example):
                assert entity in entities, f"{intent}: {example!r} annotates undeclared entity {entity!r}"
                assert text.strip() == text and text, f"{intent}: {example!r} has a blank-edged annotation"
            leftover = _ANNOTATION_RE.sub("", example)
            assert not re.search(r"\]\(|\[[^\]]*\]$", leftover), f"{intent}: malformed annotation in {example!r}"


def test_item_number_examples_annotate_a_valid_item_number():
    for example in _nlu_by_intent()[constants.INTENT_ASK_ITEM_BY_NUMBER]:
        numbers = [text for text, entity in _annotations(example) if entity == constants.ENTITY_ITEM_NUMBER]
        assert len(numbers) == 1, f"{example!r} must annotate exactly one item_number"
        value = numbers[0]
        if value.isdigit():
            number = int(value)
        else:
            assert _CN_NUMBER_RE.match(value), f"{example!r}: {value!r} is neither Arabic nor Chinese numeral"
            number = _cn_to_int(value)
        assert 1 <= number <= ITEMS_IN_NOTICE, f"{example!r}: item {number} does not exist (1–{ITEMS_IN_NOTICE})"


def test_item_numbers_in_both_arabic_and_chinese_numerals():
    values = [
        text
        for example in _nlu_by_intent()[constants.INTENT_ASK_ITEM_BY_NUMBER]
        for text, _ in _annotations(example)
    ]
    arabic = sum(v.isdigit() for v in values)
    assert arabic >= 5 and len(values) - arabic >= 5, f"{arabic} Arabic / {len(values) - arabic} Chinese numerals"


def test_regexes_compile():
    for entry in _load("nlu")["nlu"]:
        if "regex" in entry:
            for pattern in _examples(entry["examples"]):
                re.compile(pattern)


def test_no_example_is_duplicated_within_or_across_intents():
    seen: dict[str, list[str]] = defaultdict(list)
    for intent, examples in _nlu_by_intent().items():
        for example in examples:
            seen[_normalise(example)].append(intent)
    duplicates = {text: intents for text, intents in seen.items() if len(intents) > 1}
    assert not duplicates, f"examples listed more than once: {duplicates}"


def test_no_held_out_text_is_in_the_training_data():
    training = {_normalise(e): e for examples in _nlu_by_intent().values() for e in examples}
    leaked = [text for text in _heldout_texts() if _normalise(text) in training]
    assert not leaked, f"test questions copied into bot/data/nlu.yml: {leaked}"


def test_intents_heldout_covers_every_intent():
    with open(DATA / "intents_heldout.tsv", encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        assert reader.fieldnames == ["text", "intent"], f"header is {reader.fieldnames}"
        rows = list(reader)
    counts = Counter(row["intent"] for row in rows)
    assert set(counts) == set(constants.INTENTS), f"intents_heldout.tsv intents: {sorted(counts)}"
    thin = {intent: n for intent, n in counts.items() if n < 8}
    assert not thin, f"fewer than 8 held-out examples: {thin}"


# ---------------------------------------------------------------- rules, stories, test stories


def test_conversation_top_level_keys():
    for file, conv, entry in _conversations():
        allowed = RULE_KEYS if file == "rules" else STORY_KEYS
        unknown = set(entry) - allowed
        assert not unknown, f"{file}: {conv!r} has keys Rasa does not accept: {sorted(unknown)}"
        assert entry.get("steps"), f"{file}: {conv!r} has no steps"


def test_step_keys_are_accepted_by_rasa():
    for file, conv, step in _steps():
        unknown = set(step) - STEP_KEYS
        assert not unknown, f"{file}: {conv!r} step {step!r} has keys Rasa does not accept: {sorted(unknown)}"
        primary = {"intent", "action", "slot_was_set", "active_loop", "checkpoint"} & set(step)
        assert len(primary) == 1, f"{file}: {conv!r} step {step!r} must have exactly one of intent/action/…"
        if "entities" in step or "user" in step:
            assert "intent" in step, f"{file}: {conv!r} step {step!r}: entities/user belong to an intent step"


def test_step_intents_are_declared():
    known = set(constants.INTENTS) | RASA_DEFAULT_INTENTS
    for file, conv, step in _steps():
        if "intent" in step:
            assert step["intent"] in known, f"{file}: {conv!r} uses undeclared intent {step['intent']!r}"


def test_step_actions_are_declared():
    domain = _load("domain")
    known = set(domain["responses"]) | set(_names(domain["actions"])) | RASA_DEFAULT_ACTIONS
    for file, conv, step in _steps():
        if "action" in step:
            assert step["action"] in known, f"{file}: {conv!r} uses undeclared action {step['action']!r}"


def test_step_entities_and_slots_are_declared():
    domain = _load("domain")
    entities, slots = set(_names(domain["entities"])), set(domain["slots"])
    for file, conv, step in _steps():
        for entity in step.get("entities") or []:
            name = next(iter(entity)) if isinstance(entity, dict) else entity
            assert name in entities, f"{file}: {conv!r} uses undeclared entity {name!r}"
        for slot in step.get("slot_was_set") or []:
            name = next(iter(slot)) if isinstance(slot, dict) else slot
            assert name in slots, f"{file}: {conv!r} sets undeclared slot {name!r}"


def test_every_declared_intent_has_examples():
    missing = set(constants.INTENTS) - set(_nlu_by_intent())
    assert not missing, f"declared intents without NLU examples: {sorted(missing)}"


def test_every_declared_response_and_action_is_used():
    domain = _load("domain")
    used = {step["action"] for file, _, step in _steps() if "action" in step and file != "test_stories"}
    config = _load("config")
    for policy in config["policies"]:
        if policy.get("core_fallback_action_name"):
            used.add(policy["core_fallback_action_name"])
    for action in list(used):
        used |= RESPONSES_USED_BY_DEFAULT_ACTIONS.get(action, set()) | RESPONSES_USED_BY_CUSTOM_ACTIONS.get(action, set())
    declared = set(domain["responses"]) | set(_names(domain["actions"]))
    unused = declared - used
    assert not unused, f"declared in domain.yml but never used in rules/stories/config: {sorted(unused)}"


def test_rules_map_each_intent_to_its_action():
    mapping: dict[str, set[str]] = defaultdict(set)
    for rule in _load("rules")["rules"]:
        steps = rule["steps"]
        for first, second in zip(steps, steps[1:]):
            if "intent" in first and "action" in second:
                mapping[first["intent"]].add(second["action"])
    assert {intent: sorted(actions) for intent, actions in mapping.items()} == {
        intent: [action] for intent, action in EXPECTED_RULES.items()
    }


def _intent_sequence(story: dict) -> list[str]:
    return [step["intent"] for step in story["steps"] if "intent" in step]


def test_stories_have_a_follow_up_and_a_topic_switch():
    sequences = [_intent_sequence(story) for story in _load("stories")["stories"]]
    ask = constants.INTENT_ASK_NOTICE
    assert any(a == b == ask for seq in sequences for a, b in zip(seq, seq[1:])), (
        "no story with a follow-up (ask_notice then ask_notice)"
    )
    content = set(constants.INTENTS) - {constants.INTENT_GREET, constants.INTENT_GOODBYE, constants.INTENT_THANK}
    assert any(
        a != b and a in content and b in content for seq in sequences for a, b in zip(seq, seq[1:])
    ), "no story switching between two different content intents"


def test_stories_follow_the_rules():
    """Every intent in a story is answered by the action its rule names (no contradictions)."""
    for story in _load("stories")["stories"]:
        steps = story["steps"]
        for first, second in zip(steps, steps[1:]):
            if "intent" in first:
                assert second.get("action") == EXPECTED_RULES[first["intent"]], (
                    f"story {story['story']!r}: {first['intent']} → {second!r}, rules say "
                    f"{EXPECTED_RULES[first['intent']]}"
                )


def test_test_stories_are_end_to_end():
    stories = _load("test_stories")["stories"]
    assert len(stories) >= 6, f"bot/tests/test_stories.yml has {len(stories)} stories, need at least 6"
    entities = set(_names(_load("domain")["entities"]))
    for story in stories:
        steps = story["steps"]
        assert "user" in steps[0] and "intent" in steps[0], f"{story['story']!r} must start with a user turn"
        for first, second in zip(steps, steps[1:]):
            if "user" in first:
                assert second.get("action") == EXPECTED_RULES[first["intent"]], (
                    f"{story['story']!r}: {first['user'].strip()!r} ({first['intent']}) → {second!r}"
                )
        for step in steps:
            if "user" in step:
                assert "intent" in step, f"{story['story']!r}: user turn {step['user']!r} without intent"
                for _, entity in _annotations(step["user"]):
                    assert entity in entities, f"{story['story']!r}: undeclared entity {entity!r}"


# ---------------------------------------------------------------- config, endpoints, credentials


def test_config_language_and_recipe():
    config = _load("config")
    assert config.get("recipe") == "default.v1"
    assert config.get("language") == "zh"
    assert isinstance(config.get("assistant_id"), str) and config["assistant_id"], "assistant_id missing"


def test_config_pipeline_components():
    pipeline = _load("config")["pipeline"]
    assert [c["name"] for c in pipeline] == EXPECTED_PIPELINE
    counts = [c for c in pipeline if c["name"] == "CountVectorsFeaturizer"]
    assert counts[0].get("analyzer", "word") == "word", f"first CountVectorsFeaturizer: {counts[0]!r}"
    assert {k: counts[1].get(k) for k in ("analyzer", "min_ngram", "max_ngram")} == {
        "analyzer": "char_wb",
        "min_ngram": 1,
        "max_ngram": 4,
    }
    by_name = {c["name"]: c for c in pipeline}
    assert by_name["DIETClassifier"].get("epochs") == 100
    assert by_name["DIETClassifier"].get("constrain_similarities") is True
    assert by_name["FallbackClassifier"].get("threshold") == 0.4
    assert by_name["FallbackClassifier"].get("ambiguity_threshold") == 0.1


def test_config_policies():
    policies = _load("config")["policies"]
    assert [p["name"] for p in policies] == EXPECTED_POLICIES
    by_name = {p["name"]: p for p in policies}
    rule = by_name["RulePolicy"]
    assert rule.get("core_fallback_threshold") == 0.3
    assert rule.get("core_fallback_action_name") == "action_default_fallback"
    assert rule.get("enable_fallback_prediction") is True
    assert by_name["TEDPolicy"].get("max_history") == 5
    assert by_name["TEDPolicy"].get("epochs") == 100


def test_endpoints_point_at_the_action_server():
    endpoints = _load("endpoints")
    assert endpoints["action_endpoint"] == {"url": "http://localhost:5055/webhook"}
    # make serve's conversations: Rasa's SQL tracker store, SQLite under var/
    assert endpoints["tracker_store"] == {"type": "SQL", "dialect": "sqlite", "db": "var/trackers.db"}


def test_credentials_rest_and_socketio():
    credentials = _load("credentials")
    assert "rest" in credentials, "credentials.yml needs the rest channel"
    assert credentials.get("socketio") == {
        "user_message_evt": "user_uttered",
        "bot_message_evt": "bot_uttered",
        "session_persistence": True,
    }
