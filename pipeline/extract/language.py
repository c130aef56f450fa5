"""Is a text language at all? A cheap test that catches bodies served scrambled.

Some paywalls serve the article letter-shifted ("Ejf Gppe.Usvdlt" for "Die Food.Trucks") and
unscramble it in the browser; stored as is, it pollutes search, dedup and summaries. Real prose in
any language that writes words with spaces is full of short function words ("the", "und", "de",
"и"); scrambled text has almost none. A text with too few of them is not language when it also
reads as language once shifted back by some number of letters, or when its share of vowels is far
from any language's. No model, no download: a word list of the common function words of the
European languages and Indonesian.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["not_language"]

# the commonest short words of each language, one language a line
_COMMON_WORDS = (
    "the of and to in is that for on with as was at by it from be are this have an not or but he",
    "der die das und zu den von mit ist des sich auf für nicht ein eine dem im ich es auch",
    "le la les de des et en du un une est que pour dans qui sur pas au il",
    "el los las del y por con para se al lo su como más",
    "di che è per non sono della gli nel",
    "o os as do da em um uma não com mais",
    "het een van dat op te met voor niet zijn",
    "och att det som är på för av inte",
    "og er til ikke af",
    "w na z się nie że jest jak",
    "je v se s ve",
    "și în cu pe nu că",
    "és az hogy egy van",
    "ja on ei että oli",
    "ve bir bu ile için",
    "yang dan ini itu dengan untuk",
    "и в не на что с по я он как а то это к но из у за от",
    "і та що до як від",
)
_FUNCTION_WORDS = frozenset(word for line in _COMMON_WORDS for word in line.split())
_WORD = re.compile(r"[^\W\d_]+")
_VOWELS = frozenset("aeiouyаеёиоуыэюяіїєαεηιουω")
_MIN_WORDS = 40  # shorter texts give no reliable verdict
_FEW_HITS = 0.03  # share of function words below which a text is suspect (real prose: 0.15-0.45)
_SHIFTED_HITS = 0.10  # share reached once shifted back: the text is letter-shifted prose
_VOWEL_RANGE = (0.25, 0.60)  # share of vowels among letters in real prose, any language
_ALPHABET = "abcdefghijklmnopqrstuvwxyz"


def _base_letters(word: str) -> str:
    """The word without diacritics, so "é" counts as the vowel "e"."""
    return "".join(ch for ch in unicodedata.normalize("NFD", word) if not unicodedata.combining(ch))


def _hits(words: list[str]) -> float:
    return sum(word in _FUNCTION_WORDS for word in words) / len(words)


def _shifted_back(words: list[str], shift: int) -> list[str]:
    table = str.maketrans(_ALPHABET, _ALPHABET[shift:] + _ALPHABET[:shift])
    return [word.translate(table) for word in words]


def not_language(text: str) -> str | None:
    """Why ``text`` is not language ("letter-shifted", "no words of any language"), or None.

    Texts of fewer than 40 words, and scripts that do not separate words by spaces, get the
    benefit of the doubt.
    """
    words = [w.casefold() for w in _WORD.findall(text)]
    if len(words) < _MIN_WORDS or _hits(words) >= _FEW_HITS:
        return None
    latin = [w for w in words if w.isascii()]
    if len(latin) >= len(words) // 2:
        for shift in range(1, 26):
            if _hits(_shifted_back(latin, shift)) >= _SHIFTED_HITS:
                return f"letter-shifted text (shifted by {26 - shift} letters)"
    letters = "".join(_base_letters(w) for w in words)
    vowels = sum(ch in _VOWELS for ch in letters)
    cased = sum(ch.isalpha() and ch.lower() != ch.upper() for ch in letters)
    if cased < len(letters) // 2:
        return None  # scripts without case (Arabic, Hebrew, Indic, CJK): vowels are not written
    low, high = _VOWEL_RANGE
    if not low <= vowels / max(cased, 1) <= high:
        return "no words of any language (scrambled text)"
    return None
