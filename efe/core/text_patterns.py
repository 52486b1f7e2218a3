"""The token patterns of the text moves, shared by the dataset context (which measures what each
pattern's tokens say about the target) and the offline proposer (which renders them into programs)."""

from __future__ import annotations

# A title word followed by a full stop ("Mr.", "Dr.") anywhere in the text.
TITLE_RE = r"\b([A-Z][a-z]{0,9})\."
# A title between ", " and ".", the first and the last word, an e-mail or web domain, the first run
# of digits (a number). The vocabulary a program keeps is learnt in its fit.
PATTERNS = {"title": r",\s*([A-Za-z][A-Za-z ]{0,23}?)\.", "prefix": r"^\W*([A-Za-z][A-Za-z'-]*)",
            "suffix": r"([A-Za-z][A-Za-z'-]*)\W*$", "domain": r"@([\w-]+(?:\.[\w-]+)+)", "digits": r"(\d+)"}
WORD_RE = r"[a-z]{2,}"
