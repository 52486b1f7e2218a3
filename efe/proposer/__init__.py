"""The offline proposer: sound feature-engineering moves, chosen from the context and the feedback."""
