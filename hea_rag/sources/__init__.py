"""Literature APIs as a source of papers: OpenAlex, Crossref and arXiv, one module each.

Each module turns its API's answers into `Work` records (work.py) through the one shared HTTP
client (client.py: polite headers, bounded retries, a timeout, an on-disk cache). fetch.py runs
a search or a lookup over them; `hea-rag fetch` only wires that to the output and the indexer.
"""

SOURCE_NAMES = ("openalex", "crossref", "arxiv")
