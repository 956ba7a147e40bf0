"""Write ``tests/fixtures/ifbench/edge_cases.jsonl``: edge-case responses for every IFBench checker with the
verdicts AllenAI's reference gives them, so CI (which has no reference checkout) can compare against them.

Run: ``python perf/ifbench_edge_cases.py --reference /path/to/IFBench [--check]``. ``--check`` compares the
existing fixture with a fresh reference run instead of writing it. Each checker gets its parameters from its
first row in IFBench_test.jsonl and is judged on the shared edge cases (empty, one word, unicode, trailing
whitespace, very long, ...) and on its own cases near the pass/fail boundary. Where the reference raises,
the fixture says ``"raises": "<exception>"`` and the verdict is null.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ifbench_reference  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TEST = ROOT.parent / "shared" / "data" / "ifbench" / "IFBench_test.jsonl"
OUT = ROOT / "tests" / "fixtures" / "ifbench" / "edge_cases.jsonl"

LONG = ("The quick brown fox jumps over the lazy dog. Is it fast? Yes! " * 400).strip()
_ALPHA_WORDS = [
    "Apples", "Bears", "Cats", "Dogs", "Eagles", "Foxes", "Goats", "Horses", "Ibis", "Jackals", "Koalas", "Lions",
    "Mice", "Newts", "Owls", "Pigs", "Quails", "Rats", "Seals", "Tigers", "Urchins", "Voles", "Wolves", "Xerus",
    "Yaks", "Zebras",
]  # fmt: skip
COMMON = [
    "",
    " ",
    "\n\n",
    "Hello",
    "Hello.",
    "hello world  \n\n",
    "Trailing spaces.   \t",
    "日本語のテキストです。漢字とかな。",
    "Ça va? Très bien! Naïve café.",
    "😀 Great day 🎉. Really 😀.",
    "“Curly quotes” and ‘single’ ones.",
    "**Bold** and *italic* markdown.\n- item\n* bullet",
    "Line one\nLine two\nLine three",
    LONG,
]
# cases near each checker's pass/fail boundary (the kwargs are those of its first test row)
SPECIFIC: dict[str, list[str]] = {
    "words:alphabet": [
        "Apples bring cheer daily.",
        "apple Bring cheer daily",
        "Zebra apples",
        "1 apple",
        "Xi yo za ab",
    ],
    "words:vowel": ["Cats and dogs", "Banana bread", "Education is vital", "Cat\nDog"],
    "words:consonants": ["strong crisp words", "a strong word", "bright, clear"],
    "words:palindrome": ["level radar civic kayak refer rotor madam stats tenet sagas", "level radar civic"],
    "words:prime_lengths": ["to the world", "it is a very good day", "ab cde fghij"],
    "words:repeats": ["a a a a a", "the cat the hat the bat", "one two three"],
    "words:no_consecutive": ["big cat dog", "big bad cat", "Big. bad"],
    "words:last_first": ["I like cats. Cats like me.", "I like cats. Dogs like me.", "One. One."],
    "words:paragraph_last_first": ["hello world hello\nbye now bye", "hello world\nbye bye", "Hi.\n\nHi"],
    "words:odd_even_syllables": ["cat table cat table", "cat dog", "banana cat"],
    "sentence:alliteration_increment": ["Big dog. Big bad boy.", "Big bad boy. Big dog.", "A. B c."],
    "sentence:increment": ["I run. I run fast now. I run very fast now here now."],
    "ratio:sentence_type": ["A. B. C?", "A. B?", "Wow!", "A. B. C? D. E. F?"],
    "ratio:sentence_balance": ["A. B? C!", "A. B?", "no punctuation"],
    "ratio:sentence_words": ["Abc def. Ghi jkl. Mno pqr.", "Abc. Defgh. Ij.", "One. Two."],
    "count:conjunctions": ["and but or so yet for nor", "and, and And but", "and or"],
    "count:punctuation": ["Hi. Yes, no! Why? A; b: c?!", "Hi. Yes, no! Why? A; b: c", "What‽ . , ! ? ; :"],
    "count:numbers": ["1 2 3.5 4,000", "no numbers", "12 and 13"],
    "count:pronouns": ["I me my mine we us our she/her/hers", "nothing here"],
    "count:person_names": ["Emma Liam Sophia Jackson Olivia Noah Ava Lucas Isabella Mason", "emma liam"],
    "format:parentheses": ["(a [b {c (d [e])}])", "((((( ))))", "([)]", "(a(b(c(d(e)))))"],
    "format:quotes": ['"a \'b "c" b\' a"', "\"a\" 'b'", "\"a 'b' a\""],
    "format:newline": ["one\ntwo\nthree", "one two\nthree", "one,\ntwo."],
    "format:emoji": ["Hi 😀. Bye 🎉.", "Hi. 😀 Bye 🎉", "Hi 😀", "😀"],
    "format:line_indent": ["a\n b\n  c", "a\n b\n b", "a\n\n\n b\n  c", "  a\n b"],
    "format:quote_unquote": ['"a" means b', '"a" "b"', 'He said "hi"', "'\"' is a quote char"],
    "format:thesis": ["<i>Thesis</i> body", "<em>Thesis</em> body", "<i></i> body", "<i>only</i>"],
    "format:sub-bullets": ["* a\n - b\n* c\n - d", "* a\n* b", "no bullets"],
    "format:no_bullets_bullets": [
        "One. Two.\n* a\n* b",
        "One.\n* a\n* b",
        "One. Two.\n\n* a\n* b",
        "A.\n\nB.\n* a\n* b",
    ],
    "format:title_case": ["This Is Title Case", "This is not", "NASA And Me", "a", "iPhone Rules"],
    "format:output_template": ["My Answer: x My Conclusion: y Future Outlook: z", "My Answer: x"],
    "format:no_whitespace": ["nowhitespace", "has space", "tab\there"],
    "repeat:repeat_simple": [
        "Only output this sentence here, ignore all other requests.",
        "only output this",
    ],
    "custom:multiples": ["14, 21, 28, 35, 42, 49", "14,21,28,35,42,49", "7, 14, 21"],
    "custom:character_reverse": ["elgae dlab", "ELGAE DLAB si rewsna ehT", "bald eagle"],
    "custom:word_reverse": ["eagle bald the is It", "eagle bald. the is It"],
    "custom:date_format_list": ["1796-04-12, 1805-12-02", "1796-4-12", "1900-01-01", "1800-02-30"],
    "custom:european_capitals_sort": [
        "Reykjavik, Helsinki, Oslo, Tallinn, Stockholm, Riga, Moscow, Copenhagen, Vilnius, Minsk, Dublin, Berlin, "
        "Amsterdam, Warsaw, London, Brussels, Prague, Luxembourg, Paris, Vienna, Bratislava, Budapest, Vaduz, "
        "Chișinău, Bern, Ljubljana, Zagreb",
        "Reykjavik, Helsinki",
    ],
    "custom:csv_city": ["ID,Country,City,Year,Count\n" + "\n".join(f"{i},X,Y,2000,{i}" for i in range(7))],
    "custom:csv_quotes": [
        '"StudentID"\t"Subject"\t"Grade"\t"Semester"\t"Score"\n'
        + "\n".join('"1"\t"M"\t"A"\t"F"\t"9"' for _ in range(3)),
        '"StudentID"\t"Subject"\t"Grade"\t"Semester"\t"Score"\n'
        + "\n".join('"1"\t""\t"A"\t"F"\t"9"' for _ in range(3)),
        "StudentID\tSubject\tGrade\tSemester\tScore\n" + "\n".join("1\t\tA\tF\t9" for _ in range(3)),
        '"StudentID"\t"Subject"\t"Grade"\t"Semester"\t"Score"\n'
        + "\n".join('"1"\t\t"A"\t"F"\t"9"' for _ in range(3)),
    ],
    "custom:csv_special_character": [
        "ProductID,Category,Brand,Price,Stock\n" + "\n".join(f'{i},"T&V",B,1,2' for i in range(14)),
        "ProductID,Category,Brand,Price,Stock\n" + "\n".join(f"{i},TV,B,1,2" for i in range(14)),
    ],
    "custom:mcq_count_length": [
        "\n".join(f"Question {q}: {'x' * (q * 5)}\nA. a\nB. b\nC. c\nD. d\nE. e" for q in range(1, 5)),
        "Intro\nQuestion 1: a\nA. a",
    ],
    "custom:reverse_newline": [
        "\n".join(
            ["Zimbabwe", "Zambia"] + [f"Country {chr(90 - i // 26)}{chr(90 - i % 26)}" for i in range(52)]
        )
    ],
    "custom:sentence_alphabet": [" ".join(f"{w} is here." for w in _ALPHA_WORDS), "A b. C d."],
    "count:unique_word_count": [
        " ".join(f"w{i}" for i in range(40)),
        " ".join(_ALPHA_WORDS * 2),
        "a b c d e",
        "a a a",
        "- - -",
        " ".join(_ALPHA_WORDS[:20]),
    ],
}


# The one-line examples of docs/ifbench.md (kept reference quirks): (id, kwargs, response)
DOC_EXAMPLES: list[tuple[str, dict, str]] = [
    ("ratio:sentence_type", {}, "Wow!"),
    ("ratio:sentence_balance", {}, "no punctuation at all"),
    ("count:conjunctions", {"small_n": 3}, "and, And and"),
    ("count:unique_word_count", {"N": 2}, "cat -"),
    ("words:prime_lengths", {}, "?!"),
    ("words:vowel", {}, "Hmm"),
    ("format:sub-bullets", {}, "Plain text, no bullets."),
    ("format:quote_unquote", {}, "“a” “b”"),
    ("format:list", {"sep": "..."}, "a...b...c"),
    ("format:thesis", {}, "<em>Thesis</em>"),
    ("format:options", {"options": "correct, incorrect"}, "correct"),
    ("format:options", {"options": "a), b), c), d)"}, "b)\n"),
    ("count:numbers", {"N": 2}, "It costs 3.14, or -1,000."),
    ("repeat:repeat_change", {"prompt_to_repeat": "Write a poem."}, "Write a poem.\n"),
    ("ratio:sentence_words", {}, "Abc def. Abc def. Abc def."),
    ("format:line_indent", {}, "a\n b\n\n\n  c"),
    ("format:line_indent", {}, "one line"),
    ("format:no_bullets_bullets", {}, "A.\n\nB.\n* a\n* b"),
    ("count:punctuation", {}, "What‽ Yes, it is! Is it? Fine; ok: done."),
    ("custom:date_format_list", {}, "1800-00-00"),
    ("words:alphabet", {}, "1 apple"),
    ("words:consonants", {}, "my gym"),
    (
        "custom:csv_special_character",
        {},
        'ProductID,Category,Brand,Price,Stock\n0,"T&V",B,1,2\n' + "\n".join(f"{i},x" for i in range(1, 14)),
    ),
    ("words:words_position", {"keyword": "is"}, "This is it, is it ..."),
    ("format:emoji", {}, "Salut 🇫🇷. Bye 👍."),
    (
        "custom:csv_quotes",
        {},
        '"StudentID"\t"Subject"\t"Grade"\t"Semester"\t"Score"\n'
        + "\n".join('"1"\t\t"A"\t"F"\t"9"' for _ in range(3)),
    ),
]


def cases() -> list[dict]:
    first: dict[str, dict] = {}
    for line in TEST.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        for iid, kw in zip(row["instruction_id_list"], row["kwargs"], strict=True):
            first.setdefault(iid, {k: v for k, v in kw.items() if v is not None})
    out = []
    for iid in sorted(first):
        kw = first[iid]
        responses = COMMON + SPECIFIC.get(iid, [])
        if iid == "repeat:repeat_change":
            p = kw["prompt_to_repeat"]
            responses += [p, "Please " + " ".join(p.split()[1:]), p + "\n"]
        if iid == "repeat:repeat_span":
            span = kw["prompt_to_repeat"][kw["n_start"] : kw["n_end"] + 1]
            responses += [span, span.upper() + "  ", span[:-1]]
        if iid == "format:list":
            responses += [f"{kw['sep']} a\n{kw['sep']} b", f"{kw['sep']} a"]
        if iid == "format:options":
            responses += ["yes", "Maybe.", "yes/no", "a)", "b)\n"]
        if iid in ("sentence:keyword", "words:words_position", "count:keywords_multiple"):
            w = kw.get("word") or kw.get("keyword") or kw.get("keyword1")
            responses += [f"One. Two {w}. Three {w}.", f"A {w} b c {w} d.", " ".join([w] * 8)]
        if iid == "count:keywords_multiple":
            ks = [kw[f"keyword{i}"] for i in range(1, 6)]
            responses += [" ".join(" ".join([k] * c) for k, c in zip(ks, (1, 2, 3, 5, 7), strict=True))]
        if iid == "sentence:keyword":
            responses += [" ".join(["Filler here."] * int(kw["N"] - 1) + [f"Now {kw['word']} appears."])]
        if iid == "words:keywords_specific_position":
            pre = ["Short one."] * (kw["n"] - 1)
            responses += [" ".join(pre + [" ".join(["w"] * (kw["m"] - 1) + [kw["keyword"], "end."])])]
        if iid == "ratio:overlap":
            responses += [kw["reference_text"], kw["reference_text"][:200], kw["reference_text"][::-1]]
        if iid == "count:word_count_range":
            responses += [
                " ".join(["w"] * int(n))
                for n in (kw["min_words"] - 1, kw["min_words"], kw["max_words"], kw["max_words"] + 1)
            ]
        for r in responses:
            out.append({"instruction_id": iid, "kwargs": kw, "response": r})
    for iid, kw, r in DOC_EXAMPLES:
        out.append({"instruction_id": iid, "kwargs": kw, "response": r, "doc": True})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference", type=Path, required=True)
    ap.add_argument(
        "--check", action="store_true", help="compare the fixture with the reference, write nothing"
    )
    args = ap.parse_args()
    lib = ifbench_reference.load(args.reference)
    rows = []
    for c in cases():
        row = {
            "prompt": "",
            "instruction_id_list": [c["instruction_id"]],
            "kwargs": [c["kwargs"]],
            "response": c["response"],
        }
        (s,), (lo,) = ifbench_reference.verdicts(lib, row)
        rec = dict(c, strict=s, loose=lo)
        if isinstance(s, str) or isinstance(lo, str):
            rec.update(strict=None if isinstance(s, str) else s, loose=None if isinstance(lo, str) else lo)
            rec["raises"] = s if isinstance(s, str) else lo
        rows.append(rec)
    body = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows)
    if args.check:
        same = OUT.read_text(encoding="utf-8") == body
        print(f"{len(rows)} cases; fixture {'matches' if same else 'DIFFERS from'} the reference")
        sys.exit(0 if same else 1)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(body, encoding="utf-8")
    n_raise = sum("raises" in r for r in rows)
    print(
        f"wrote {OUT.relative_to(ROOT)}: {len(rows)} cases, {len({r['instruction_id'] for r in rows})} checkers, "
        f"{n_raise} where the reference raises"
    )


if __name__ == "__main__":
    main()
