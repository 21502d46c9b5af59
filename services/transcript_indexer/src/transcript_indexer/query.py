"""The search query language, parsed here and rendered for each back end: pure code, no I/O.

A user's query is never handed to FTS5 or ``to_tsquery`` as typed (either would answer a stray
quote with an error, and FTS5 gives meaning to words such as ``NEAR``): it is parsed into a small
tree and rendered as an expression that cannot fail. What users can write::

    refund policy          both words (any order)
    "refund policy"        the phrase
    refund OR return       either (upper-case OR)
    refund -policy         refund, not policy (also ``NOT policy``)
    refu*                  a word starting with "refu"
    (refund OR return) -policy

Words are split the way the indexes split text (letters and digits; anything else separates), so
``e-mail`` is the phrase "e mail" and ``don't`` the phrase "don t". Anything else is a
:class:`QuerySyntaxError` whose message says what to fix.
"""

import re
from dataclasses import dataclass

MAX_QUERY_CHARS = 500
MAX_TERMS = 32


class QuerySyntaxError(ValueError):
    """The query cannot be parsed; the message is meant for the user."""


@dataclass(frozen=True, slots=True)
class Term:
    """Consecutive tokens (a phrase when more than one); ``prefix`` applies to the last."""

    tokens: tuple[str, ...]
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class And:
    include: tuple["Node", ...]
    exclude: tuple["Node", ...] = ()


@dataclass(frozen=True, slots=True)
class Or:
    options: tuple["Node", ...]


Node = Term | And | Or

_TOKEN = re.compile(r'\s*(?:(?P<quote>"[^"]*"?)|(?P<paren>[()])|(?P<word>[^\s()"]+))')
_WORD_CHARS = re.compile(r"[^\W_]+")


def tokens_of(text: str) -> tuple[str, ...]:
    """The index tokens of ``text``: runs of letters and digits, lower-cased."""
    return tuple(t.lower() for t in _WORD_CHARS.findall(text))


def _lex(query: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    position = 0
    while position < len(query):
        match = _TOKEN.match(query, position)
        if match is None or match.end() == position:
            break  # only trailing whitespace is left
        position = match.end()
        if match["quote"] is not None:
            if len(match["quote"]) < 2 or not match["quote"].endswith('"'):
                raise QuerySyntaxError('unterminated phrase: a " has no closing "')
            out.append(("phrase", match["quote"][1:-1]))
        elif match["paren"] is not None:
            out.append((match["paren"], match["paren"]))
        else:
            word = match["word"]
            out.append(("op", word) if word in ("OR", "AND", "NOT") else ("word", word))
    return out


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self._tokens = tokens
        self._at = 0
        self.terms = 0

    def _peek(self) -> tuple[str, str] | None:
        return self._tokens[self._at] if self._at < len(self._tokens) else None

    def parse(self) -> Node:
        node = self._or()
        if self._peek() is not None:
            raise QuerySyntaxError("unbalanced parentheses: a ) has no matching (")
        return node

    def _or(self) -> Node:
        options = [self._and()]
        while self._peek() == ("op", "OR"):
            self._at += 1
            if self._peek() in (None, (")", ")")):
                raise QuerySyntaxError("OR needs a term on both sides")
            options.append(self._and())
        return options[0] if len(options) == 1 else Or(tuple(options))

    def _and(self) -> Node:
        include: list[Node] = []
        exclude: list[Node] = []
        while (token := self._peek()) is not None and token not in (("op", "OR"), (")", ")")):
            negated = False
            if token == ("op", "AND"):
                self._at += 1
                continue
            if token == ("op", "NOT"):
                negated = True
                self._at += 1
            elif token[0] == "word" and token[1].startswith("-"):
                negated = True
                self._tokens[self._at] = ("word", token[1][1:])
                if not token[1][1:]:
                    raise QuerySyntaxError(
                        "a - must be followed by the word to exclude, without a space"
                    )
            atom = self._atom()
            if atom is not None:
                (exclude if negated else include).append(atom)
        if not include:
            if exclude:
                raise QuerySyntaxError("a query needs at least one word that is not excluded")
            if self._peek() == ("op", "OR"):
                raise QuerySyntaxError("OR needs a term on both sides")
            raise QuerySyntaxError("the query has no words to search for")
        node = include[0] if len(include) == 1 else And(tuple(include))
        return And((node,), tuple(exclude)) if exclude else node

    def _atom(self) -> Node | None:
        token = self._peek()
        if token is None or token[0] == "op":
            raise QuerySyntaxError("NOT must be followed by the word to exclude")
        self._at += 1
        if token[0] == "(":
            if self._peek() == (")", ")"):
                raise QuerySyntaxError("empty parentheses")
            node = self._or()
            if self._peek() != (")", ")"):
                raise QuerySyntaxError("unbalanced parentheses: a ( has no matching )")
            self._at += 1
            return node
        if token[0] == ")":
            raise QuerySyntaxError("unbalanced parentheses: a ) has no matching (")
        text, prefix = token[1], False
        if token[0] == "word" and text.endswith("*"):
            text, prefix = text.rstrip("*"), True
            if not tokens_of(text):
                raise QuerySyntaxError("a * must follow at least one letter or digit, as in refu*")
        words = tokens_of(text)
        if not words:
            if token[0] == "phrase":
                raise QuerySyntaxError("empty phrase")
            return None  # punctuation only: nothing the index could match
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise QuerySyntaxError(f"too many terms (at most {MAX_TERMS})")
        return Term(words, prefix)


def parse_query(query: str) -> Node:
    """The tree of ``query``; raises :class:`QuerySyntaxError` with a message for the user."""
    if len(query) > MAX_QUERY_CHARS:
        raise QuerySyntaxError(f"the query is too long (at most {MAX_QUERY_CHARS} characters)")
    tokens = _lex(query)
    if not tokens:
        raise QuerySyntaxError("the query is empty")
    return _Parser(tokens).parse()


def to_fts5(node: Node) -> str:
    """An SQLite FTS5 MATCH expression: every token quoted, every operator parenthesised."""
    if isinstance(node, Term):
        return '"' + " ".join(node.tokens) + '"' + (" *" if node.prefix else "")
    if isinstance(node, Or):
        return "(" + " OR ".join(to_fts5(option) for option in node.options) + ")"
    expression = "(" + " AND ".join(to_fts5(part) for part in node.include) + ")"
    for excluded in node.exclude:
        expression = f"({expression} NOT {to_fts5(excluded)})"
    return expression


def to_tsquery(node: Node) -> str:
    """A PostgreSQL ``to_tsquery('simple', ...)`` expression: every lexeme quoted."""
    if isinstance(node, Term):
        lexemes = [
            "'" + token.replace("\\", "\\\\").replace("'", "''") + "'" for token in node.tokens
        ]
        if node.prefix:
            lexemes[-1] += ":*"
        return "(" + " <-> ".join(lexemes) + ")"
    if isinstance(node, Or):
        return "(" + " | ".join(to_tsquery(option) for option in node.options) + ")"
    expression = " & ".join(to_tsquery(part) for part in node.include)
    for excluded in node.exclude:
        expression += " & !" + to_tsquery(excluded)
    return "(" + expression + ")"


def number_spellings(number: str) -> tuple[str, ...]:
    """A phone number as stored (E.164, ``+`` optional); anything else (a SIP URI) as typed."""
    compact = re.sub(r"[\s().-]", "", number)
    if re.fullmatch(r"\+?\d+", compact):
        digits = compact.lstrip("+")
        return ("+" + digits, digits)
    return (number,)
