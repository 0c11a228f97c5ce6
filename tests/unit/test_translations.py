"""Every message the code marks has a Chinese translation (Chinese is the default language)."""
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from tests.conftest import ROOT

CATALOG = ROOT / "incus_api" / "translations" / "zh" / "LC_MESSAGES"


def extracted_messages():
    with open(ROOT / "babel.cfg") as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    keywords = {**DEFAULT_KEYWORDS, "N_": None, "_l": None}
    found = set()
    for _, _, message, _, _ in extract_from_dir(str(ROOT), method_map, options_map, keywords=keywords):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def by_singular(catalog):
    """``{singular msgid: translation}``; plural entries keep the tuple of their forms."""
    return {
        (m.id if isinstance(m.id, str) else m.id[0]): (m.string if isinstance(m.string, str) else tuple(m.string))
        for m in catalog if m.id
    }


def test_every_marked_message_is_translated_and_compiled():
    with open(CATALOG / "messages.po", "rb") as handle:
        po = by_singular(read_po(handle))
    with open(CATALOG / "messages.mo", "rb") as handle:
        mo = by_singular(read_mo(handle))
    messages = {m for m in extracted_messages() if m}
    missing = sorted(m for m in messages if not po.get(m) or not all(po[m]))
    assert not missing, f"untranslated (run incus_api/translations/update.sh): {missing[:10]}"
    stale = sorted(m for m in messages if mo.get(m) != po[m])
    assert not stale, f".mo not compiled from the .po (run incus_api/translations/update.sh): {stale[:10]}"
