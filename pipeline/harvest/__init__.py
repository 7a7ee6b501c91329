"""Harvesting scholarly APIs: OpenAlex, Crossref, Semantic Scholar, ERIC and PubMed.

    harvest(source, query, *, since=None, max_records=None, base_url=None, filters=None,
            raw_dir=None, checkpoint_path=None, page_size=None, known_ids=None, settings=None)
        -> HarvestResult(records, raw_files, pages, complete, cursor_state, ...)

- `records` are pipeline.records.Record with source_format='api', source_file=<source>, and the
  source's own id: OpenAlex W-id, Crossref DOI, S2 paperId, ERIC EJ/ED number, PubMed PMID. They are
  unique by id within a harvest; ids in `known_ids` are dropped (use the corpus's ids to keep only
  new records when a date window overlaps the last run).
- `base_url` is the API root as documented (https://api.openalex.org, https://api.crossref.org,
  https://api.semanticscholar.org, https://api.ies.ed.gov/eric/,
  https://eutils.ncbi.nlm.nih.gov/entrez/eutils); the documented paths are added below it.
- `raw_dir`: every payload is stored there immutably with its provenance (pipeline.harvest.raw).
- `checkpoint_path`: the state is saved after every page. A harvest interrupted (crash, Ctrl-C,
  a source down past the retries) resumes from its last cursor when called again with the same
  source, query, filters and since (its earlier pages' records are re-read from `raw_dir`). After a
  complete run, the next call asks only for what is new since that run started
  (`incremental_since`), unless `since` is later.
- `since`: 'YYYY-MM-DD' (or ISO date-time): ask only for what is new since then.
- Keys come from the environment (OPENALEX_API_KEY, SEMANTIC_SCHOLAR_API_KEY, NCBI_API_KEY,
  CROSSREF_PLUS_API_TOKEN; REVIEW_MAILTO for polite pools); they never appear in logs or raw files.
- Errors a user can act on raise HarvestError (a ReviewError): one sentence, what and how to fix.

offline_reason(base_url) -> str | None: a 2-second reachability check, so an offline run can skip
harvesting with one line instead of waiting through retries.
"""

from pipeline.harvest.core import SOURCES, HarvestResult, client_class, harvest, incremental_since, parse_since
from pipeline.harvest.http import HarvestError, HttpSettings, offline_reason, redact

__all__ = [
    "SOURCES",
    "HarvestError",
    "HarvestResult",
    "HttpSettings",
    "client_class",
    "default_base_url",
    "harvest",
    "incremental_since",
    "offline_reason",
    "parse_since",
    "redact",
]


def default_base_url(source: str) -> str:
    """The documented API root of a source."""
    return client_class(source).default_base_url
