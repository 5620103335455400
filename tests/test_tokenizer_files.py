"""The bundled CLIP tokenizer files give the same ids as open_clip's own tokenizer."""

import open_clip
import pytest

from core.resources import resource_path

TEXTS = [
    "a red circle on the left",
    "On the LEFT side, a circle coloured red!",
    "masterpiece, best quality, 1girl, (detailed eyes:1.2), photo of a cat 4k",
    "naïve café — émigré ünïcode 東京 🙂",
    "",
]


@pytest.fixture(scope="module")
def hf_tokenizer():
    from core.offline import import_transformers

    return import_transformers().CLIPTokenizer.from_pretrained(str(resource_path("tokenizers", "clip")))


@pytest.mark.parametrize("text", TEXTS)
def test_ids_equal_open_clip_up_to_padding(hf_tokenizer, text):
    ours = hf_tokenizer(text, padding="max_length", max_length=77, truncation=True).input_ids
    theirs = open_clip.tokenize([text])[0].tolist()
    n = theirs.index(49407) + 1
    assert ours[:n] == theirs[:n]
    assert all(t == 49407 for t in ours[n:])  # SD 1.5 pads with <|endoftext|>


def test_vocabulary_size(hf_tokenizer):
    assert len(hf_tokenizer) == 49408
