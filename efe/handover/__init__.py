"""Handing a frozen program over: the package, its model card, the review log and the generated test suite."""
