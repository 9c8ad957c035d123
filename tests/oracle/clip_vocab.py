"""Builds CLIP's vocab.json + merges.txt from open_clip's bpe_simple_vocab_16e6.txt.gz exactly as
OpenAI CLIP's simple_tokenizer does, then CLIPTokenizerFast from them, saved with save_pretrained
(which writes tokenizer.json).

usage: clip_vocab.py OPEN_CLIP_WHEEL OUT_DIR
"""
import gzip
import json
import os
import sys
import tempfile
import zipfile


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def main():
    wheel, out = sys.argv[1], sys.argv[2]
    with zipfile.ZipFile(wheel) as z:
        gz = z.read("open_clip/bpe_simple_vocab_16e6.txt.gz")
    lines = gzip.decompress(gz).decode("utf-8").split("\n")
    merges = [tuple(m.split()) for m in lines[1 : 49152 - 256 - 2 + 1]]
    assert len(merges) == 48894, len(merges)
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == 49408, len(vocab)
    encoder = {tok: i for i, tok in enumerate(vocab)}
    assert len(encoder) == 49408

    from transformers import CLIPTokenizerFast

    with tempfile.TemporaryDirectory() as tmp:
        vf, mf = os.path.join(tmp, "vocab.json"), os.path.join(tmp, "merges.txt")
        with open(vf, "w", encoding="utf-8") as f:
            json.dump(encoder, f, ensure_ascii=False)
        with open(mf, "w", encoding="utf-8") as f:
            f.write("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
        tok = CLIPTokenizerFast(vocab_file=vf, merges_file=mf)
        ids = tok("a normal weld")["input_ids"]
        assert ids == [49406, 320, 5967, 39776, 49407], ids
        partial = out + ".partial"
        tok.save_pretrained(partial)
        # save_pretrained of a fast tokenizer built from files keeps the slow files too
        for name in ("vocab.json", "merges.txt"):
            if not os.path.exists(os.path.join(partial, name)):
                with open(os.path.join(tmp, name), "rb") as src, open(os.path.join(partial, name), "wb") as dst:
                    dst.write(src.read())
    if os.path.isdir(out):
        import shutil

        shutil.rmtree(out)
    os.replace(partial, out)


if __name__ == "__main__":
    main()
