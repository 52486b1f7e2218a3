"""LLM back ends for the search, plugged into openevolve through ``init_client``.

Every back end (an OpenAI-compatible endpoint, the offline proposer, a replay file) is
wrapped by the same response cache, token/cost ledger and budget caps (``client.EfeLLM``).
"""
