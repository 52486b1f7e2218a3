"""EFE-Tab: evolving feature programs for binary classification tables."""
