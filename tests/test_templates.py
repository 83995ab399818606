"""Default checklist templates: every shipped file is valid, bilingual and practical; bad files are refused."""

import json

import pytest

from services import templates as tpl
from services.templates import (
    ACCEPTED_KINDS,
    MATTER_TYPES,
    ChecklistTemplate,
    all_templates,
    load_template,
    load_template_file,
)

TEXT_FIELDS = ("name", "instructions", "why")
ALL_ITEMS = [
    pytest.param(template, item, id=f"{template.matter_type}:{item.key}")
    for template in all_templates().values()
    for item in template.items
]


@pytest.mark.parametrize("matter_type", MATTER_TYPES)
def test_every_matter_type_has_a_template(matter_type):
    template = load_template(matter_type)
    assert isinstance(template, ChecklistTemplate)
    assert template.matter_type == matter_type
    assert template.items
    assert template.source.strip()
    assert template.title["en"] and template.title["es"]
    assert template.title["en"] != template.title["es"]


def test_all_templates_matches_matter_types_and_is_cached():
    templates = all_templates()
    assert tuple(templates) == MATTER_TYPES
    assert load_template("I-130") is templates["I-130"]
    assert load_template(" i-130 ") is templates["I-130"]


def test_unknown_matter_type_is_refused_with_known_types_listed():
    with pytest.raises(ValueError) as excinfo:
        load_template("I-999")
    message = str(excinfo.value)
    assert "I-999" in message
    assert "I-130" in message and "RFE" in message


def test_no_stray_template_files():
    shipped = {path.stem for path in tpl.TEMPLATES_DIR.glob("*.json")}
    assert shipped == set(MATTER_TYPES)


@pytest.mark.parametrize("template", list(all_templates().values()), ids=lambda t: t.matter_type)
def test_keys_unique_and_snake_case(template):
    keys = [item.key for item in template.items]
    assert len(keys) == len(set(keys))
    for key in keys:
        assert key == key.lower() and " " not in key and "-" not in key
        assert template.item(key) is not None and template.item(key).key == key
    assert template.item("no_such_item") is None


@pytest.mark.parametrize("template, item", ALL_ITEMS)
def test_item_texts_are_bilingual_and_translated(template, item):
    for field in TEXT_FIELDS:
        texts = getattr(item, field)
        assert texts["en"].strip(), f"{field} en empty"
        assert texts["es"].strip(), f"{field} es empty"
        assert texts["en"] != texts["es"], f"{field} not translated"


@pytest.mark.parametrize("template, item", ALL_ITEMS)
def test_instructions_are_short_enough_for_one_message(template, item):
    for lang in ("en", "es"):
        assert len(item.instructions[lang]) <= 220, (lang, len(item.instructions[lang]))


@pytest.mark.parametrize("template, item", ALL_ITEMS)
def test_item_enumerations_are_valid(template, item):
    assert item.accepted_kinds
    assert set(item.accepted_kinds) <= ACCEPTED_KINDS
    assert item.sides in (1, 2)
    assert item.translation_needed in ("never", "if_not_english", "always")
    assert isinstance(item.required, bool)


@pytest.mark.parametrize("template, item", ALL_ITEMS)
def test_two_sided_items_ask_for_the_back(template, item):
    if item.sides == 2:
        assert "back" in item.instructions["en"].lower()
        assert "reverso" in item.instructions["es"].lower()


@pytest.mark.parametrize("template, item", ALL_ITEMS)
def test_in_person_only_items_say_how_to_hand_them_over(template, item):
    if item.accepted_kinds == ("in_person",):
        assert "office" in item.instructions["en"].lower()
        assert "oficina" in item.instructions["es"].lower()


@pytest.mark.parametrize("template, item", ALL_ITEMS)
def test_items_that_never_need_translation_do_not_ask_for_one(template, item):
    if item.translation_needed == "never":
        assert "translation" not in item.instructions["en"].lower()
        assert "traducción" not in item.instructions["es"].lower()


def test_sealed_medical_exam_is_required_and_handed_over_unopened():
    exam = load_template("I-485").item("medical_exam_i693")
    assert exam is not None and exam.required
    assert exam.accepted_kinds == ("in_person",)
    assert "open" in exam.instructions["en"].lower()
    assert "abra" in exam.instructions["es"].lower()


def test_green_card_and_work_permit_are_two_sided():
    assert load_template("N-400").item("green_card").sides == 2
    assert load_template("I-765").item("previous_ead_or_photo_id").sides == 2


def test_import_format_example_key_exists():
    # DESIGN.md's import example gives an I-130 matter the checklist key "birth_certificate".
    assert load_template("I-130").item("birth_certificate") is not None


def test_spanish_uses_accents_and_formal_address():
    spanish = " ".join(
        item.instructions["es"] for template in all_templates().values() for item in template.items
    )
    assert "Envíe" in spanish and "está en inglés" in spanish
    assert " tú " not in spanish.lower() and "envía " not in spanish.lower()


# --- malformed files are refused, naming the problem ---------------------------------------------

def _valid_item(**overrides):
    item = {
        "key": "marriage_certificate",
        "name": {"en": "Marriage certificate", "es": "Acta de matrimonio"},
        "instructions": {"en": "Send a photo.", "es": "Envíe una foto."},
        "why": {"en": "Proof of marriage.", "es": "Prueba del matrimonio."},
        "accepted_kinds": ["image", "pdf"],
        "sides": 1,
        "translation_needed": "if_not_english",
        "required": True,
    }
    item.update(overrides)
    return item


def _write(tmp_path, items, **top):
    data = {
        "matter_type": "I-130",
        "title": {"en": "Petition", "es": "Petición"},
        "source": "USCIS Form I-130 instructions",
        "items": items,
    }
    data.update(top)
    path = tmp_path / "I-130.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_valid_file_loads(tmp_path):
    template = load_template_file(_write(tmp_path, [_valid_item()]))
    item = template.item("marriage_certificate")
    assert item.accepted_kinds == ("image", "pdf")
    assert item.name["es"] == "Acta de matrimonio"


def test_missing_spanish_text_is_refused(tmp_path):
    bad = _valid_item(instructions={"en": "Send a photo."})
    with pytest.raises(ValueError, match=r"I-130\.json.*'marriage_certificate'.*instructions.*'es'"):
        load_template_file(_write(tmp_path, [bad]))


def test_blank_english_text_is_refused(tmp_path):
    bad = _valid_item(why={"en": "  ", "es": "Prueba."})
    with pytest.raises(ValueError, match=r"'marriage_certificate'.*why.*'en'"):
        load_template_file(_write(tmp_path, [bad]))


def test_bad_kind_is_refused(tmp_path):
    bad = _valid_item(accepted_kinds=["image", "fax"])
    with pytest.raises(ValueError, match=r"I-130\.json.*'marriage_certificate'.*fax"):
        load_template_file(_write(tmp_path, [bad]))


def test_duplicate_key_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"I-130\.json.*'marriage_certificate'.*duplicate"):
        load_template_file(_write(tmp_path, [_valid_item(), _valid_item()]))


@pytest.mark.parametrize(
    "overrides, problem",
    [
        ({"key": "Marriage-Certificate"}, "snake_case"),
        ({"sides": 3}, "sides"),
        ({"sides": True}, "sides"),
        ({"translation_needed": "sometimes"}, "translation_needed"),
        ({"required": "yes"}, "required"),
        ({"accepted_kinds": []}, "accepted_kinds"),
        ({"requried": True}, "unknown field"),
    ],
)
def test_other_item_problems_are_refused(tmp_path, overrides, problem):
    with pytest.raises(ValueError, match=problem):
        load_template_file(_write(tmp_path, [_valid_item(**overrides)]))


def test_missing_item_field_is_refused(tmp_path):
    bad = _valid_item()
    del bad["why"]
    with pytest.raises(ValueError, match=r"'marriage_certificate'.*missing.*why"):
        load_template_file(_write(tmp_path, [bad]))


def test_top_level_problems_are_refused(tmp_path):
    with pytest.raises(ValueError, match="items"):
        load_template_file(_write(tmp_path, []))
    with pytest.raises(ValueError, match="title.*'es'"):
        load_template_file(_write(tmp_path, [_valid_item()], title={"en": "Petition"}))


def test_invalid_json_and_missing_file_are_refused(tmp_path):
    path = tmp_path / "RFE.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match=r"RFE\.json.*not valid JSON"):
        load_template_file(path)
    with pytest.raises(ValueError, match="not found"):
        load_template_file(tmp_path / "missing.json")
