"""The rule engine: meaning (category cues, negation, gaps, conditionals), evidence, speed paths, bad input,
and agreement with the hand-coded validation set."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
import random
import re
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.codebook import load_codebook
from pipeline.errors import ReviewError
from pipeline.rules import HIT_COLUMNS, build_engine, code_studies, looks_non_english, skip_reason
from pipeline.rules.engine import _View, lower_aligned
from pipeline.rules.nlp import lemma_of
from pipeline.rules.prefilter import RuleRegex, build_wordset, match_heads, required_literals

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"
CODING = ROOT / "tests" / "data" / "coding"


@pytest.fixture(scope="module")
def codebook():
    return load_codebook(ROOT / "codebook" / "school_to_school.yaml")


@pytest.fixture(scope="module")
def engine(codebook):
    return build_engine(codebook)


@pytest.fixture(scope="module")
def unscoped(codebook):
    """The engine without the scope gate: exercises the rules on any text (off-topic exports included)."""
    return build_engine(dataclasses.replace(codebook, scope=()))


@pytest.fixture(scope="module")
def chunking(codebook):
    """The unscoped engine cutting every text, however short, into sentence chunks for the pre-filter."""
    engine = build_engine(dataclasses.replace(codebook, scope=()))
    engine.chunk_min_chars = 0
    return engine


def _codes(engine, text: str) -> dict[str, str]:
    return {hit.code: hit.direction for hit in engine.code_text(text)}


def _evaluate_module():
    spec = importlib.util.spec_from_file_location("coding_evaluate", CODING / "evaluate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _on_topic_abstracts(count: int) -> list[str]:
    """~200-word abstracts made of the seeds' and the validation sets' sentences, shuffled with a fixed seed
    (as benchmarks/coding_bench.py makes them): nearly every sentence has a concept and a cue."""
    texts = [seed.read_text(encoding="utf-8") for seed in sorted((SHARED / "seeds").glob("*.txt"))]
    for name in ("gold.jsonl", "holdout.jsonl"):
        texts += [json.loads(line)["text"] for line in (CODING / name).read_text().splitlines()]
    sentences = sorted({s for t in texts for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", t) if len(s.split()) > 5})
    rng = random.Random(7)
    abstracts = []
    for _ in range(count):
        parts: list[str] = []
        while sum(len(p.split()) for p in parts) < 200:
            parts.append(rng.choice(sentences))
        abstracts.append(" ".join(parts))
    return abstracts


def _real_abstracts(limit: int) -> list[str]:
    """Abstracts from real exports (Scopus CSV, Zotero RIS) and the seeds: crude parsing is enough here."""
    texts = []
    csv = pd.read_csv(SHARED / "data/exports/csv/litsearchr_scopus.csv", encoding="utf-8-sig", dtype=str)
    texts.extend(csv["Abstract"].dropna().tolist()[: limit // 2])
    ris = (SHARED / "data/exports/ris/asysd_zotero_export.ris").read_text(encoding="utf-8")
    texts.extend(re.findall(r"^AB  - (.*)$", ris, flags=re.MULTILINE)[: limit // 2])
    for seed in sorted((SHARED / "seeds").glob("*.txt")):
        texts.append(seed.read_text(encoding="utf-8"))
    return texts


# ---------------------------------------------------------------- meaning


def test_the_category_cue_decides_the_category(engine):
    assert _codes(engine, "Successful collaboration between schools depended on trust between headteachers.") == {
        "facilitators.trust_relationships": ""
    }
    assert _codes(engine, "A lack of trust between the schools hindered joint work.") == {"barriers.lack_of_trust": ""}
    assert _codes(engine, "Heavy workloads were a barrier to collaboration between schools.") == {
        "barriers.time_workload": ""
    }
    assert _codes(engine, "Dedicated time for teachers to meet was a key enabler of collaboration.") == {
        "facilitators.time_resources": ""
    }
    assert _codes(engine, "Schools joined the network to overcome professional isolation.") == {"reasons.isolation": ""}


def test_same_word_without_a_cue_is_not_coded(engine):
    assert _codes(engine, "The schools in the federation had known each other and their trust for years.") == {}
    assert _codes(engine, "Pupils in the schools sat national tests in reading.") == {}


def test_negation_and_hedging(engine):
    text = "We find no relationship between federation and inspection judgements in schools."
    assert _codes(engine, text) == {"benefits.school_performance": "contrasting"}
    assert _codes(engine, "Little research demonstrates that school collaboration improves pupil outcomes.") == {}
    assert _codes(engine, "Partner schools did not report any barriers related to distance.") == {}
    assert _codes(engine, "Competition between schools did not prevent them from sharing.") == {}
    assert _codes(engine, "This study asks whether federations improve outcomes for pupils in schools.") == {}


def test_conditionals_make_a_benefit_mixed_only_in_their_clause(engine):
    text = (
        "It suggests that collaboration between schools can widen student learning opportunities; "
        "and, under certain conditions, contribute to the raising of expectations."
    )
    assert _codes(engine, text) == {
        "benefits.wider_opportunities": "supporting",
        "benefits.culture_expectations": "mixed",
    }
    text = (
        "Under the right circumstances, school collaboration is a powerful means of strengthening "
        "the capacity of schools."
    )
    assert _codes(engine, text) == {"benefits.system_capacity": "mixed"}


def test_purpose_is_a_reason_not_a_benefit(engine):
    assert _codes(engine, "Schools federated mainly to share scarce resources and specialist staff.") == {
        "reasons.resources": ""
    }
    assert _codes(engine, "Collaboration between schools led to improvements in pupils' attainment.") == {
        "benefits.student_outcomes": "supporting"
    }


def test_blockers_keep_organisations_out_of_concepts(engine):
    assert _codes(engine, "Schools that joined a multi-academy trust were a barrier case.") == {}
    assert "facilitators.trust_relationships" not in _codes(
        engine, "Schools in the academy trust found collaboration easier."
    )


def test_every_hit_keeps_its_evidence_offsets_rule_and_confidence(engine):
    text = (
        "This paper examines school-to-school collaboration in England. "
        "Competition between schools for pupils limited what heads were willing to share. "
        "However, trust between headteachers was a key condition for success."
    )
    hits = engine.code_text(text, title="Collaboration in English schools")
    assert [h.code for h in hits] == ["barriers.competition", "facilitators.trust_relationships"]
    for hit in hits:
        assert text[hit.start : hit.end] == hit.evidence
        assert text[hit.match_start : hit.match_end] == hit.matched
        assert hit.start <= hit.match_start < hit.match_end <= hit.end
        assert 0.0 <= hit.confidence <= 1.0 and hit.rule and hit.field == "abstract"
    assert hits[0].evidence.startswith("Competition between schools") and hits[0].rule.endswith("(standalone)")
    assert hits[1].matched == "trust" and hits[1].cue == "condition for success" and "cue(facilitators)" in hits[1].rule
    assert hits[1].confidence == 0.8  # the cue is 3-6 tokens from its concept


def test_title_hits_are_marked(engine):
    hits = engine.code_text("", title="Mistrust between schools as an obstacle to collaboration")
    assert [(h.code, h.field) for h in hits] == [("barriers.lack_of_trust", "title")]


def test_codebook_examples_are_coded_with_their_own_code(codebook, unscoped):
    for code in codebook.codes:
        for example in code.examples:
            hits = [h for h in unscoped.code_text(example.text) if h.code == code.id]
            assert hits, (code.id, example.text)
            if example.direction:
                assert {h.direction for h in hits} == {example.direction}, (code.id, example.text)


# ---------------------------------------------------------------- fast path == slow path


def test_fast_path_gives_the_slow_path_output_on_real_abstracts(unscoped, chunking):
    texts = _real_abstracts(400)
    gold = [json.loads(line)["text"] for line in (CODING / "gold.jsonl").read_text().splitlines()]
    texts += gold + [" ".join(gold[i : i + 6]) for i in range(0, len(gold), 6)]
    coded = 0
    for text in texts:
        slow = unscoped.code_text_slow(text)
        assert unscoped.code_text(text) == slow
        assert chunking.code_text(text) == slow
        coded += bool(slow)
    assert coded > 150  # the comparison covered texts that have hits, not only empty results


def test_fast_path_gives_the_slow_path_output_on_on_topic_abstracts(engine, chunking):
    """The speed benchmark's case: abstracts in which nearly every sentence is coded."""
    hits = 0
    for text in _on_topic_abstracts(250):
        slow = engine.code_text_slow(text)
        assert engine.code_text(text) == slow
        assert chunking.code_text(text) == slow  # an unscoped engine: these are all in scope anyway
        hits += len(slow)
    assert hits > 1000


def test_hits_come_by_field_sentence_and_code_each_code_once_a_sentence(engine, chunking):
    """The order a reader (and code_studies) gets: title first, then sentence by sentence, codes sorted."""
    texts = _on_topic_abstracts(60)
    titles = ["Trust and competition between schools in a collaborative network", ""] * 30
    for engine_ in (engine, chunking):
        for text, title in zip(texts, titles, strict=True):
            keys = [(h.field != "title", h.start, h.code) for h in engine_.code_text(text, title=title)]
            assert keys == sorted(set(keys))


def test_lower_case_phrases_match_as_spacys_lower_matcher_does(codebook, unscoped):
    """Lower-case phrases are found on their lemmas, then kept only where the tokens are the phrase's own forms:
    the same matches as a PhraseMatcher on LOWER, also where another form shares the lemmas."""
    from spacy.matcher import PhraseMatcher

    pipe = unscoped._pipe
    reference = PhraseMatcher(pipe.vocab, attr="LOWER")
    phrases = {f"P|{code.id}": code.phrases for code in codebook.codes if code.phrases}
    phrases["B|blockers"] = codebook.modifiers.blockers + ("mixed methods", "mixed-methods")
    for key, values in phrases.items():
        reference.add(key, [pipe.make_pattern(p) for p in values if p.strip()])
    shared_lemmas = [p for values in phrases.values() for p in values if pipe.lemmas(p) != p.lower().split()]
    assert shared_lemmas  # phrases whose lemmas other forms share ('trusts' -> 'trust')
    texts = _real_abstracts(200) + _on_topic_abstracts(40)
    texts += [f"{p} and {' '.join(pipe.lemmas(p))}; {p.upper()}." for p in shared_lemmas]
    found = 0
    for text in texts:
        view = _View(*pipe.parse(text), text)
        expected = sorted(
            (pipe.vocab.strings[key], start, end)
            for key, start, end in reference(view.doc)
            if any(start >= s and end <= e for s, e in view.sents)
        )
        got = sorted(
            (f"{m[0]}|{m[1]}", m[2], m[3])
            for group in unscoped._groups(view)
            for slot in ("concept", "blocker")
            for m in group.get(slot, [])
            if m[0] in ("P", "B")
        )
        assert got == expected, text
        found += len(got)
    assert found > 100


def test_pre_filter_passes_only_text_that_can_be_coded(unscoped, chunking):
    exports = _real_abstracts(400)[:-5]
    rejected = [t for t in exports if not unscoped.candidate_chunks(t)]
    assert len(rejected) >= 3 and all(unscoped.code_text_slow(t) == [] for t in rejected)
    # a long text: off-topic abstracts around one coded sentence; spaCy sees only the chunk around it
    coded = "Competition between schools for pupils limited what heads were willing to share."
    text = " ".join(rejected[:3] * 4 + [coded] + rejected[:3] * 4)
    assert len(text) > unscoped.chunk_min_chars
    chunks = unscoped.candidate_chunks(text)
    assert len(chunks) == 1 and coded in text[slice(*chunks[0])] and chunks[0][1] - chunks[0][0] < len(text) / 3
    hits = unscoped.code_text(text)
    assert hits == unscoped.code_text_slow(text) == chunking.code_text(text)
    assert [h.code for h in hits] == ["barriers.competition"] and hits[0].evidence == coded


def _vocabulary(codebook) -> list[str]:
    """Words a codebook's rules and cues are made of, with inflections the lemma table may or may not know."""
    words = set()
    for code in codebook.codes:
        for phrase in code.phrases + code.lemmas + code.standalone:
            words.update(phrase.split())
    for category in codebook.categories.values():
        for phrase in category.cues:
            words.update(phrase.split())
    inflected = {w + suffix for w in words for suffix in ("s", "es", "ed", "ing")}
    inflected |= {w[:-1] + "ies" for w in words if w.endswith("y")}
    filler = ["the", "schools", "and", "not", "no", "cannot", "However,", "e.g.", "6m.", "(2010).", "U.K.", ";"]
    filler += ["don't", "“trust”", "pupils’", "–", "naïve", "İnspection", "ΣΧΟΛΕΙΑ", "(", ")", "...", "。"]
    return sorted(words | inflected) + filler


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fast_path_equals_slow_path_on_generated_text(data, codebook, unscoped, chunking):
    vocabulary = _vocabulary(codebook)
    words = st.sampled_from(vocabulary).map(lambda w: w.capitalize() if len(w) % 3 == 0 else w)
    sentence = st.lists(words, min_size=1, max_size=14).map(lambda ws: " ".join(ws))
    ends = st.sampled_from([". ", "! ", "? ", ".  ", ".\n\n", "; ", " ", "。", "… "])
    parts = data.draw(st.lists(st.tuples(sentence, ends), min_size=1, max_size=6))
    text = "".join(s + e for s, e in parts)
    slow = unscoped.code_text_slow(text)
    assert unscoped.code_text(text) == slow
    assert chunking.code_text(text) == slow


def test_sentence_chunks_never_cut_a_spacy_sentence(unscoped):
    pipe = unscoped._pipe
    for text in _real_abstracts(300):
        doc, sentences, _, _ = pipe.parse(text)
        starts = {doc[s].idx for s, _ in sentences}
        for start, _ in unscoped._chunker.chunks(text)[1:]:
            assert (
                start in starts
                or text[start - 1].isspace()
                and start in {i + len(text[i:]) - len(text[i:].lstrip()) for i in starts}
            )


def test_sentence_starts_match_spacy_sentencizer(unscoped):
    pipe = unscoped._pipe
    edge = ['A. B. c.  ?! "Hi." (x). ...  Next', "x", "Done.\n\nNew one!", "end.Next one", ". . .", "这是。下一个"]
    edge += ["Hindi। next ॥ x", "Wait… what?! Yes.", "“Quote.” Next", "x _. _y", "!!!", "a\u00a0. b"]
    for text in _real_abstracts(300) + edge:
        assert pipe.parse(text)[1] == pipe.spacy_sentences(text)


def test_lemmas_are_the_lookup_lemmas_of_each_token(unscoped):
    """The lemma rides on the lexeme (NORM): every token's, special-case pieces included, is lemma_of(text)."""
    pipe = unscoped._pipe
    for text in _real_abstracts(100):
        doc = pipe(text)
        assert [t.norm_ for t in doc] == [lemma_of(t.text) for t in doc]
    doc = pipe("Teachers don't cannot can't isn't Enablers' schools’")
    assert [t.norm_ for t in doc] == "teacher do not can not ca not be not enabler ' school ’".split()


def test_whole_words_and_loose_pieces_in_the_trigger_regex():
    words = build_wordset({"trust", "trusts", "school", "n't"}, frozenset({"n't"}), {"ran out"})
    texts = ["mistrust", "trust.", "trusted", "a trust", "trusts", "don't", "schools", "it ran outward"]
    found = [t for t in texts if words.search(t, 0, len(t))]
    assert found == ["trust.", "a trust", "trusts", "don't", "it ran outward"]
    assert not words.search("trust", 1, 5) and words.search("(trust)", 1, 6)


def test_literals_a_regex_needs_and_begins_with():
    assert required_literals(r"\bas\s+drivers?\b") == [("driver",), ("as",)]
    assert required_literals(r"\b(?:higher|lower)\b") == [("higher", "lower")]
    assert required_literals(r"(?:ab|cd)e") == [("ab", "cd"), ("e",)]
    for nothing in ("a|b", "(?i)foo", r"\d+", "foo|", "", "(?s:ab)"):
        assert required_literals(nothing) is None
    assert match_heads(r"\b(?:were|was)\s+driven") == {"were", "was"}
    assert match_heads(r"(?<=x)yz") == {"yz"} and match_heads(r"x?y") is None and match_heads("[ab]c") is None


def test_rule_regexes_find_exactly_what_the_regex_finds(codebook):
    patterns = [r for c in codebook.categories.values() for r in c.cue_regexes]
    patterns += [r for c in codebook.codes for r in c.regexes]
    patterns += [r"\bwork", "network|work", r"(?:ab|b)c", r"a(?=b)", r"(?<=x)yz", "^foo", "foo$", r"\bthe\b"]
    texts = [t.lower() for t in _real_abstracts(300)] + ["networkwork workwork", "abcbc bc", "xyz yz", "foo bar foo"]
    for pattern in patterns:
        rule = RuleRegex(pattern)
        for text in texts:
            expected = [m.span() for m in rule.regex.finditer(text)]
            assert [m.span() for m in rule.finditer(text)] == expected, (pattern, text[:80])
            assert rule.could_match(text) or not expected


def test_language_check_counts_like_its_definition():
    function_words = set(
        "the of and to in is that for with on are as by this be was were from an or at which it".split()
    )
    function_words |= {"their", "these"}

    def by_definition(text: str) -> bool:
        words = re.findall(r"[^\W\d_]+", text[:2000].lower())
        return len(words) >= 15 and sum(w in function_words for w in words) / len(words) < 0.06

    rng = random.Random(3)
    vocabulary = "the of and to in schools trust naïve café’s Schüler x y z lorem ipsum the² ½ İn ΣΧΟΛΕΙΑ".split()
    texts = _real_abstracts(300) + [" ".join(rng.choices(vocabulary, k=rng.randint(5, 80))) for _ in range(300)]
    expected = [by_definition(t) for t in texts]
    assert any(expected) and not all(expected)
    assert [looks_non_english(t) for t in texts] == expected
    assert [looks_non_english(t, t.lower()) for t in texts] == expected


def test_lower_casing_that_moves_offsets_is_noticed():
    assert lower_aligned("Schools İn") is None and lower_aligned("ΟΔΟΣ and") is None
    assert lower_aligned("Schools’ “trust”") == "schools’ “trust”"


# ---------------------------------------------------------------- bad input


def test_empty_and_whitespace_text(engine):
    assert engine.code_text("") == []
    assert engine.code_text("   \n ") == []
    assert engine.code_text("", title="") == []


@pytest.mark.timeout(120)
def test_a_100000_word_text_is_coded_sentence_by_sentence(engine):
    gold = [json.loads(line)["text"] for line in (CODING / "gold.jsonl").read_text().splitlines()]
    block = " ".join(gold)
    text = " ".join([block] * (100_000 // len(block.split()) + 1))
    assert len(text.split()) >= 100_000
    hits = engine.code_text(text)
    assert len(hits) > 500
    assert all(text[h.start : h.end] == h.evidence and len(h.evidence) < 2000 for h in hits)


def test_non_english_text_is_skipped_not_coded(engine):
    german = (
        "Die Zusammenarbeit zwischen Schulen wurde durch das Vertrauen der Schulleitungen gefördert, "
        "aber der Wettbewerb um Schüler und die knappen Mittel behinderten die gemeinsame Arbeit der Lehrkräfte "
        "in den Netzwerken, die von den Behörden eingerichtet worden waren."
    )
    assert looks_non_english(german)
    assert engine.code_text(german) == []
    assert not looks_non_english("Trust between the schools was essential for the success of the network.")
    assert skip_reason(german) == "abstract does not look like English"
    assert skip_reason("Trust helped schools.", "non_english:de; mojibake_fixed") == "flagged non_english:de"
    assert skip_reason("  ") == "empty abstract"


def test_off_topic_records_are_outside_the_scope(engine, unscoped):
    vet = "Dogs with chronic disease were treated; lack of funding limited the trial and time constraints hindered it."
    assert engine.code_text(vet) == []
    assert {h.code for h in unscoped.code_text(vet)} >= {"barriers.funding"}


# ---------------------------------------------------------------- code_studies


def test_code_studies_one_row_per_study_and_code(codebook, engine):
    studies = pd.DataFrame(
        {
            "id": ["s1", "s2", "s3", "s4"],
            "title": ["", "", "", ""],
            "abstract": [
                "Collaboration between schools improved teaching practice. Teachers said joint work between the "
                "schools improved their classroom practice. There was no evidence that it improved pupil outcomes.",
                "",
                "Lack of time was a barrier to collaboration between schools.",
                "Lack of time was a barrier to collaboration between schools.",
            ],
            "flags": ["", "", "", "non_english:fr"],
        }
    )
    rows = code_studies(studies, codebook, engine=engine)
    assert list(rows.columns) == HIT_COLUMNS
    assert set(rows["id"]) == {"s1", "s3"}
    assert not rows.duplicated(["id", "code"]).any()
    practice = rows[(rows["id"] == "s1") & (rows["code"] == "benefits.practice_improvement")].iloc[0]
    assert practice["n_sentences"] == 2 and practice["direction"] == "supporting" and practice["method"] == "rule"
    outcomes = rows[(rows["id"] == "s1") & (rows["code"] == "benefits.student_outcomes")].iloc[0]
    assert outcomes["direction"] == "contrasting"
    barrier = rows[rows["id"] == "s3"].iloc[0]
    assert (barrier["code"], barrier["category"], barrier["direction"]) == ("barriers.time_workload", "barriers", "")
    text = studies.loc[2, "abstract"]
    assert text[barrier["start"] : barrier["end"]] == barrier["evidence"]


def test_code_studies_other_id_column_and_missing_columns(codebook, engine):
    studies = pd.DataFrame({"record_id": [7], "abstract": ["Mistrust between schools was an obstacle."]})
    rows = code_studies(studies, codebook, id_column="record_id", engine=engine)
    assert rows["id"].tolist() == ["7"] and rows["code"].tolist() == ["barriers.lack_of_trust"]
    with pytest.raises(ReviewError, match="no 'id' column"):
        code_studies(studies, codebook, engine=engine)
    empty = code_studies(studies.iloc[0:0], codebook, id_column="record_id", engine=engine)
    assert empty.empty and list(empty.columns) == HIT_COLUMNS


def test_mixed_direction_across_sentences(codebook, engine):
    studies = pd.DataFrame(
        {
            "id": ["m"],
            "abstract": [
                "Collaboration between schools led to higher pupil attainment in reading. "
                "Collaboration had no effect on pupil attainment in mathematics."
            ],
        }
    )
    rows = code_studies(studies, codebook, engine=engine)
    assert rows.set_index("code").loc["benefits.student_outcomes", "direction"] == "mixed"


def _code_in_worker(codebook, studies: pd.DataFrame) -> pd.DataFrame:
    """What a worker process runs: its own engine, built from the codebook it was sent (pickled)."""
    return code_studies(studies, codebook)


def test_code_studies_runs_in_a_worker_process(codebook, engine):
    """code_batch-style use: the codebook and the studies go to another process, the hits come back."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    studies = pd.DataFrame({"id": [f"s{i}" for i in range(40)], "abstract": _on_topic_abstracts(40)})
    studies["title"] = ""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        remote = pool.submit(_code_in_worker, codebook, studies).result()
    local = code_studies(studies, codebook, engine=engine)
    assert len(local) > 100
    pd.testing.assert_frame_equal(remote, local)


# ---------------------------------------------------------------- validation against hand-coded gold


def test_agreement_with_the_hand_coded_validation_sets(codebook):
    evaluate = _evaluate_module()
    engine, code_ids = evaluate.build_unscoped_engine()
    gold_items = evaluate.load_items(CODING / "gold.jsonl")
    gold = evaluate.score(gold_items, evaluate.predict(engine, gold_items), code_ids)
    holdout_items = evaluate.load_items(CODING / "holdout.jsonl")
    holdout = evaluate.score(holdout_items, evaluate.predict(engine, holdout_items), code_ids)
    # regression guards at the figures reported in tests/data/coding/README.md
    assert gold["all"]["kappa"] >= 0.9
    assert all(gold[c]["kappa"] >= 0.8 for c in ("reasons", "facilitators", "barriers", "benefits"))
    assert gold["benefits"]["kappa_direction"] >= 0.9
    assert holdout["all"]["kappa"] >= 0.8
    assert holdout["all"]["precision"] > holdout["all"]["recall"]
    assert gold["all"]["precision"] >= gold["all"]["recall"]


# ---------------------------------------------------------------- the compiled build (setup.py)


def test_make_install_compiled_every_engine_module():
    """`make install` compiles the engine (Cython) and fastdoc.pyx; the speed target (issue 4) counts on both."""
    from pipeline import rules
    from pipeline.rules import nlp

    stale = [name for name, build in rules.BUILDS.items() if build != "compiled"]
    assert not stale, f"running from source: {stale}; run `make install` (it compiles them) before the tests"
    assert nlp.FASTDOC is not None, "pipeline/rules/fastdoc.pyx is not built; run `make install`"


def test_fastdoc_reads_the_doc_as_spacy_does(unscoped):
    """The C reads of a Doc equal the Python ones: offsets from Doc.to_array, matches from PhraseMatcher(doc)."""
    from pipeline.rules import nlp

    pipe = unscoped._pipe
    edge = ["", "x", "这是。下一个 😀 x.", "a\u00a0. b", "Hindi। next ॥ x", "“Quote.” Next", "e.g. U.K. (2019)."]
    matched = 0
    for text in _real_abstracts(200) + _on_topic_abstracts(20) + edge:
        doc = pipe.nlp.tokenizer(text)
        columns = doc.to_array(["IDX", "LENGTH"]).tolist()
        expected = ([s for s, _ in columns], [s + n for s, n in columns], [i for i, (_, n) in enumerate(columns) if n == 1])
        assert nlp.FASTDOC.token_offsets(doc) == expected
        matches = unscoped._lemma_matcher(doc)
        assert nlp.FASTDOC.phrase_matches(unscoped._lemma_matcher, doc) == matches
        matched += len(matches)
    assert matched > 1000


def test_compiled_engine_gives_the_source_engine_hits():
    """The same hits from the compiled modules and from their source (REVIEW_RULES_SOURCE=1, a fresh process)."""
    import subprocess
    import sys

    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from pipeline.codebook import load_codebook\n"
        "from pipeline import rules\n"
        "engine = rules.build_engine(load_codebook(Path('codebook/school_to_school.yaml')))\n"
        "texts = json.loads(sys.stdin.read())\n"
        "print(json.dumps({'builds': rules.BUILDS, 'hits': [[list(h) for h in engine.code_text(t)] for t in texts]}))\n"
    )
    texts = _on_topic_abstracts(60) + _real_abstracts(60)

    def run(source: bool) -> dict:
        env = {**os.environ, "REVIEW_RULES_SOURCE": "1" if source else "0"}
        done = subprocess.run([sys.executable, "-c", script], input=json.dumps(texts), capture_output=True,
                              text=True, cwd=ROOT, env=env, check=True)
        return json.loads(done.stdout.splitlines()[-1])

    compiled, source = run(source=False), run(source=True)
    assert set(compiled["builds"].values()) == {"compiled"} and set(source["builds"].values()) == {"source"}
    assert sum(map(len, compiled["hits"])) > 300
    assert compiled["hits"] == source["hits"]


def test_a_module_edited_after_the_build_counts_as_stale(tmp_path, monkeypatch):
    from pipeline.rules import compiled

    manifest = tmp_path / "compiled.json"
    monkeypatch.setattr(compiled, "MANIFEST", manifest)
    source = (compiled.HERE / "engine.py").read_bytes()
    manifest.write_text(json.dumps({"engine": hashlib.sha256(source).hexdigest()}))
    assert compiled.built_from_current_source("engine")
    manifest.write_text(json.dumps({"engine": hashlib.sha256(source + b"# edited").hexdigest()}))
    assert not compiled.built_from_current_source("engine")
    manifest.unlink()
    assert not compiled.built_from_current_source("engine")
