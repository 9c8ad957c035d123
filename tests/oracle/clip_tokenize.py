"""Oracle for shared/tests/clip_tokenizer.rs: the real CLIP tokenizer (built by clip_vocab.sh from
open_clip's merges) on varied strings, fast (tokenizer.json) and slow (vocab.json + merges.txt).

usage: clip_tokenize.py TOKENIZER_DIR OUT.json
"""
import json
import sys

from transformers import CLIPTokenizer, CLIPTokenizerFast

TEXTS = [
    "a normal weld",
    "a photo of a weld",
    "A Defective Weld With Porosity",
    "burn-through",
    "excessive spatter on the bead",
    "lack of fusion",
    "undercut along the toe of the fillet weld",
    "crack",
    "misalignment of the joint (2 mm)",
    "the weld is good.",
    "MIG/MAG welding, 24V, 180A",
    "arc strike!!!",
    "it's a clean, smooth seam; isn't it?",
    "they'll weld it; we've welded; i'm welding; you'd see; he's done",
    "   leading and trailing   spaces   ",
    "tab\tand\nnewline",
    "numbers 1234567890 and 3.14",
    "e-mail: weld@example.com #hashtag",
    "über-schweißnaht",
    "café crème",
    "soudure défectueuse",
    "溶接の欠陥",
    "焊缝缺陷检测",
    "сварной шов",
    "emoji 🔥 weld ✅",
    "porosity,porosity,porosity",
    "a" * 40,
    "supercalifragilisticexpialidocious",
    "x",
    "",
    "<|startoftext|> literal specials <|endoftext|>",
    "ThE qUiCk BrOwN fOx",
    "weld_seam-01.png",
    "100% penetration",
    "~^`|\\[]{}",
]


def main():
    tokdir, out = sys.argv[1], sys.argv[2]
    fast = CLIPTokenizerFast.from_pretrained(tokdir)
    slow = CLIPTokenizer.from_pretrained(tokdir)
    res = {
        "texts": TEXTS,
        "fast": [fast(t)["input_ids"] for t in TEXTS],
        "slow": [slow(t)["input_ids"] for t in TEXTS],
    }
    with open(out, "w") as f:
        json.dump(res, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
