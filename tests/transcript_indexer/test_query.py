"""The query language: what users may write, what each back end receives, and what is refused."""

import re

import pytest

from transcript_indexer.query import MAX_TERMS, QuerySyntaxError, parse_query, to_fts5, to_tsquery


@pytest.mark.parametrize(
    ("query", "fts5", "tsquery"),
    [
        ("refund", '"refund"', "('refund')"),
        ("Refund Policy", '("refund" AND "policy")', "(('refund') & ('policy'))"),
        ('"refund policy"', '"refund policy"', "('refund' <-> 'policy')"),
        ("refund OR return", '("refund" OR "return")', "(('refund') | ('return'))"),
        ("refu*", '"refu" *', "('refu':*)"),
        ("refund -policy", '(("refund") NOT "policy")', "(('refund') & !('policy'))"),
        ("refund NOT policy", '(("refund") NOT "policy")', "(('refund') & !('policy'))"),
        ("(a OR b) c", '(("a" OR "b") AND "c")', "((('a') | ('b')) & ('c'))"),
        ("don't e-mail", '("don t" AND "e mail")', "(('don' <-> 't') & ('e' <-> 'mail'))"),
        (
            "AND near NEAR",
            '("near" AND "near")',
            "(('near') & ('near'))",
        ),  # operators of FTS5 are just words
        ("o'brien's", '"o brien s"', "('o' <-> 'brien' <-> 's')"),
        ("a ! b", '("a" AND "b")', "(('a') & ('b'))"),  # punctuation alone is ignored
    ],
)
def test_rendering(query: str, fts5: str, tsquery: str) -> None:
    node = parse_query(query)
    assert to_fts5(node) == fts5
    assert to_tsquery(node) == tsquery


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ('"refund', 'no closing "'),
        ("-refund", "not excluded"),
        ("refund OR", "both sides"),
        ("OR refund", "both sides"),
        ("(refund", "no matching )"),
        ("refund)", "no matching ("),
        ("()", "empty parentheses"),
        ("- refund", "without a space"),
        ("*", "a * must follow"),
        ('""', "empty phrase"),
        ("?!", "no words"),
        ("refund NOT", "NOT must be followed"),
        ("x" * 501, "too long"),
        (" ".join(f"w{i}" for i in range(MAX_TERMS + 1)), "too many terms"),
    ],
)
def test_errors_say_what_to_fix(query: str, message: str) -> None:
    with pytest.raises(QuerySyntaxError, match=re.escape(message)):
        parse_query(query)


def test_quotes_and_backslashes_cannot_escape_a_lexeme() -> None:
    node = parse_query("it\\'s")
    assert to_tsquery(node) == "('it' <-> 's')"
